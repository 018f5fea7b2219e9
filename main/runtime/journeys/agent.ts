/**
 * The Journey Guide agent (seed 000 §4.5 "agent loop", §5.1, §7.3 rule-based fallback, §8; issue 15 point 7): rules
 * that look at the journey, the clock, the traveller's entitlements and the weather and *propose* a next-best
 * action. It never changes anything: ./index.ts records each idea as a proposal (`agent.recommendation.shown`) and
 * applies it only when the traveller accepts it.
 *
 * Rules, each proposed at most once per journey and subject (a rejected idea is not shown again):
 * - `closes_soon`: a later stop closes within {@link CLOSES_SOON_MIN} minutes and is open now: go there first.
 * - `rain_indoor`: today's forecast for the journey's city says rain and an outdoor stop has an indoor alternative.
 * - `free_time_cafe`: the traveller is at free time and a café one of their entitlements covers is nearby.
 */
import type { JourneyDoc, JourneyLanguage, JourneyText, LatLon, Proposal, ProposalKind } from '../../common/journeys.js';
import { currentNode, formatHhmm, isOpen, localTime, nodeOf, openingToday, placeOf } from './plan.js';
import type { Progress } from './plan.js';

/** What tool-weather publishes (`plugin.tool-weather.forecast`; notes: ISSUE15-PLAN "weather.forecast"). */
export interface Forecast {
  place: { name: string; lat: number; lon: number };
  date: string;
  summary?: string;
  weather_code?: number;
  precipitation_probability_max?: number | null;
  precipitation_mm?: number | null;
  fetched_at?: string;
  offline?: boolean;
}

export interface Idea {
  kind: ProposalKind;
  /** What the idea is about (a node id): one proposal per journey, kind and subject. */
  subject: string;
  change: Proposal['change'];
  /** The card sentence's parameters (messages `journey.proposal.<kind>`). */
  params: Record<string, string | number>;
}

/** A later stop closing within this many minutes is worth going to first. */
export const CLOSES_SOON_MIN = 90;
/** Rain: at least this chance, or at least this much. */
export const RAIN_PROBABILITY = 60;
export const RAIN_MM = 1;
/** A forecast applies to a journey whose places are within this distance of its place. */
const FORECAST_RADIUS_M = 30_000;
/** Walking speed for "minutes away" (m/min, ~4.8 km/h). */
const WALK_M_PER_MIN = 80;

export interface GuideAgent {
  noteForecast(f: Forecast): void;
  propose(input: { doc: JourneyDoc; progress: Progress; covers: (venue: string) => { title: string | null } | null; language: JourneyLanguage }): Idea[];
}

export function createGuideAgent(deps: { clock: () => number; text: (t: JourneyText, l: JourneyLanguage) => string }): GuideAgent {
  const forecasts: Forecast[] = [];
  return {
    noteForecast(f) {
      if (!f || typeof f !== 'object' || !f.place || typeof f.place.lat !== 'number' || typeof f.place.lon !== 'number' || typeof f.date !== 'string') return;
      // The latest forecast per place and day.
      const i = forecasts.findIndex((x) => x.date === f.date && distance(x.place, { lat: f.place.lat, lon: f.place.lon }) < 1000);
      if (i >= 0) forecasts.splice(i, 1);
      forecasts.push(f);
      if (forecasts.length > 64) forecasts.shift();
    },

    propose({ doc, progress, covers, language }) {
      const now = localTime(deps.clock(), doc.timezone);
      const ideas: Idea[] = [];
      const current = currentNode(progress);
      if (current === null) return ideas;
      const name = (nodeId: string) => deps.text(placeOf(doc, progress, nodeId)!.name, language);

      // A later stop that closes soon, open now: go there first.
      for (const id of progress.plan) {
        if (id === current || !isOpen(progress.nodes[id]!.state)) continue;
        const hours = openingToday(placeOf(doc, progress, id)?.opening_hours, now.day);
        if (!hours || hours === 'closed') continue;
        const left = hours.close - now.minutes;
        if (now.minutes >= hours.open && left > 0 && left <= CLOSES_SOON_MIN) {
          ideas.push({ kind: 'closes_soon', subject: id, change: { op: 'move_first', node: id }, params: { place: name(id), time: formatHhmm(hours.close), minutes: left } });
        }
      }

      // Rain today in the journey's city: an outdoor stop's indoor alternative.
      const centre = doc.places[0]?.location;
      const rain = centre && forecasts.find((f) => f.date === now.date && distance(f.place, centre) <= FORECAST_RADIUS_M && ((f.precipitation_probability_max ?? 0) >= RAIN_PROBABILITY || (f.precipitation_mm ?? 0) >= RAIN_MM));
      if (rain) {
        for (const id of progress.plan) {
          if (!isOpen(progress.nodes[id]!.state)) continue;
          const place = placeOf(doc, progress, id);
          const alt = (nodeOf(doc, id)?.alternatives ?? []).find((a) => !progress.nodes[a] && doc.places.find((pl) => pl.id === nodeOf(doc, a)?.place)?.indoor);
          if (!place || place.indoor || !alt) continue;
          ideas.push({ kind: 'rain_indoor', subject: id, change: { op: 'substitute', node: id, with: alt }, params: { place: name(id), alternative: deps.text(doc.places.find((pl) => pl.id === nodeOf(doc, alt)!.place)!.name, language) } });
        }
      }

      // Free time: the nearest café one of the traveller's entitlements covers.
      if (nodeOf(doc, current)?.kind === 'free_time') {
        const here = placeOf(doc, progress, current)!;
        const cafes = doc.places
          .filter((pl) => (pl.kind === 'cafe' || pl.kind === 'restaurant') && pl.id !== here.id)
          .map((pl) => ({ pl, covered: covers(pl.id), meters: distance(here.location, pl.location) }))
          .filter((c) => c.covered !== null)
          .sort((a, b) => a.meters - b.meters);
        const best = cafes[0];
        if (best) {
          ideas.push({
            kind: 'free_time_cafe',
            subject: current,
            change: { op: 'set_place', node: current, place: best.pl.id },
            params: { place: deps.text(best.pl.name, language), minutes: Math.max(1, Math.round(best.meters / WALK_M_PER_MIN)), title: best.covered!.title ?? '' },
          });
        }
      }
      return ideas;
    },
  };
}

/** Great-circle distance in metres. */
export function distance(a: LatLon, b: LatLon): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6_371_000 * Math.asin(Math.sqrt(h));
}
