/**
 * policy-coverage (seed 000 §4.2 "safety & coverage checks"): the request's market is one of the product's
 * markets; its city is one of the product's cities and of its safety profile's cities; its cluster (district),
 * when the host names one and the profile lists clusters, is among them; and the area's safety score, when the
 * host gives one and the profile sets a minimum, reaches it.
 */
import type { PolicyContext, PolicyDecision } from '../../sdk/index.js';

interface Input {
  product: { ref: string; markets: string[]; cities: string[]; safety: { cities: string[]; clusters?: string[]; min_safety_score?: number | null } };
  request: { market?: string; city?: string; cluster?: string; safety_score?: number };
}

const strings = (x: unknown): x is string[] => Array.isArray(x) && x.every((s) => typeof s === 'string');
/** "lviv" → "Lviv", "ivano-frankivsk" → "Ivano-Frankivsk". */
const cityName = (slug: string) => slug.replace(/(^|-)([a-z])/g, (_m, sep: string, c: string) => sep + c.toUpperCase());

function nack(code: string, message: string, extra: Record<string, unknown> = {}): PolicyDecision {
  return { verdict: 'NACK', reason: `${code}: ${message}`, evidence: { code, message, ...extra } };
}

export function decide(input: Input, _ctx: PolicyContext): PolicyDecision {
  const p = input?.product;
  const r = input?.request;
  if (!p || !r || !strings(p.markets) || !strings(p.cities) || !p.safety || !strings(p.safety.cities) || typeof r.market !== 'string' || typeof r.city !== 'string') {
    return nack('PREFLIGHT_CHECK_FAILED', 'We could not check this purchase just now; please try again or ask a member of staff.', { problem: 'input.request must name a market and a city; input.product its markets, cities and safety' });
  }
  if (!p.markets.includes(r.market)) return nack('PREFLIGHT_MARKET_NOT_COVERED', 'This product is not sold in your country.', { market: r.market, markets: p.markets });
  if (!p.cities.includes(r.city) || !p.safety.cities.includes(r.city)) {
    return nack('PREFLIGHT_CITY_NOT_COVERED', `This product is not sold in ${cityName(r.city)}.`, { city: r.city, cities: p.cities.filter((c) => p.safety.cities.includes(c)) });
  }
  const clusters = strings(p.safety.clusters) ? p.safety.clusters : [];
  if (typeof r.cluster === 'string' && clusters.length > 0 && !clusters.includes(r.cluster)) {
    return nack('PREFLIGHT_CITY_NOT_COVERED', 'This product is not sold in this part of the city.', { city: r.city, cluster: r.cluster, clusters });
  }
  const min = p.safety.min_safety_score;
  if (typeof min === 'number' && typeof r.safety_score === 'number' && r.safety_score < min) {
    return nack('PREFLIGHT_CITY_NOT_COVERED', 'This product is not sold in this area right now.', { city: r.city, safety_score: r.safety_score, min_safety_score: min });
  }
  return { verdict: 'ACK', reason: `${r.market}/${r.city} is covered by ${p.ref}`, evidence: { message: 'Sold here.', market: r.market, city: r.city } };
}
