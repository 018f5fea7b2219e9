/**
 * tool-weather: the forecast for a day in a city, from Open-Meteo (https://open-meteo.com, no key; issue 15 §6).
 *
 * Args `{city, day?, language?}`:
 * - `city`: a place name ("Paris", "Париж") or an intent-list id (`new_york`: `_` reads as a space);
 * - `day`: `today` (default), `tomorrow`, `day_after_tomorrow`, a weekday (`monday` … `sunday`: the next one, today
 *   included) or a date `YYYY-MM-DD`, all in the place's own time zone (the logical time is this call's `Date`);
 * - `language`: two letters (`en` default), for the place's name.
 *
 * Online it asks the geocoding API for the place (`/v1/search`, the first match) and the forecast API for 7 days
 * (`/v1/forecast`, daily values and current conditions, `timezone=auto`), and keeps that forecast in `kv` under
 * `forecast:<city as asked, lower case>` and `forecast:<the place's name as Open-Meteo gave it, lower case>` with
 * the time it was fetched. When Open-Meteo cannot be reached (no
 * connection, a timeout, a 5xx or 429 answer) it answers from that saved forecast with `offline: true` and its age;
 * with none saved, or one that does not reach the day, it fails with WEATHER_UNAVAILABLE. An Open-Meteo 400
 * (`{"error": true, "reason": …}`) fails with WEATHER_REQUEST_REFUSED and the reason: a request this plugin got
 * wrong is not retried into a stale answer.
 *
 * Each forecast answered is also published as the contract's `weather.forecast` event (issue 15 plan "Journeys":
 * emitted as `forecast`, it is `plugin.tool-weather.forecast` on the bus), which the Journey Guide agent reads for rain.
 *
 * Output `status`: `ok` (the forecast), `place_unknown` (the geocoder found nothing by that name) or
 * `day_out_of_range` (the day is outside the 7 days the forecast covers). Capabilities: http.fetch (an effect:
 * needs a permit) to the two Open-Meteo origins, kv, events.emit.
 */
import type { ToolHost } from '../../sdk/index.js';

const GEOCODING = 'https://geocoding-api.open-meteo.com';
const FORECAST = 'https://api.open-meteo.com';
const FORECAST_DAYS = 7;
const DAILY = 'weather_code,temperature_2m_max,temperature_2m_min,precipitation_sum,precipitation_probability_max';
const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] as const;
const DAY_MS = 86_400_000;

interface Args {
  city: string;
  day?: string;
  language?: string;
}

interface Place {
  name: string;
  lat: number;
  lon: number;
  timezone: string | null;
  country: string | null;
}

/** What is kept per place in kv: one Open-Meteo forecast answer, trimmed to what the answers use. */
interface SavedForecast {
  v: 1;
  place: Place;
  fetched_at: string;
  utc_offset_seconds: number;
  daily: { time: string[]; weather_code: Array<number | null>; temperature_2m_max: Array<number | null>; temperature_2m_min: Array<number | null>; precipitation_sum: Array<number | null>; precipitation_probability_max: Array<number | null> };
  current: { time: string; temperature_2m: number | null; weather_code: number | null } | null;
}

interface FetchAnswer {
  status: number;
  json?: unknown;
  body?: string;
}

/** A failure with a stable code (main/common/errors.ts): the sandbox reports it as `<code>: <message>`. */
function fail(code: 'WEATHER_UNAVAILABLE' | 'WEATHER_REQUEST_REFUSED' | 'VALIDATION_FAILED', message: string): never {
  const err = new Error(message);
  err.name = code;
  throw err;
}

/** Open-Meteo could not be reached or is overloaded: answer from what was saved. */
class Unreachable {
  constructor(readonly why: string) {}
}

/** WMO weather interpretation codes (as Open-Meteo documents them) to the message catalogue's `sky.*` ids. */
export function skyOf(code: number | null | undefined): string {
  if (code === null || code === undefined) return 'unknown';
  if (code === 0) return 'clear';
  if (code === 1) return 'mainly_clear';
  if (code === 2) return 'partly_cloudy';
  if (code === 3) return 'overcast';
  if (code === 45 || code === 48) return 'fog';
  if (code >= 51 && code <= 55) return 'drizzle';
  if (code === 56 || code === 57 || code === 66 || code === 67) return 'freezing_rain';
  if (code === 61) return 'light_rain';
  if (code === 63) return 'rain';
  if (code === 65 || code === 82) return 'heavy_rain';
  if (code === 71) return 'light_snow';
  if (code === 73 || code === 77) return 'snow';
  if (code === 75) return 'heavy_snow';
  if (code === 80 || code === 81) return 'showers';
  if (code === 85 || code === 86) return 'snow_showers';
  if (code === 95) return 'storm';
  if (code === 96 || code === 99) return 'storm_hail';
  return 'unknown';
}

const isoDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
/** `https://host/path` of a URL, without its query (an isolate has no URL class). */
const where = (url: string): string => url.split('?')[0]!;

async function get(host: ToolHost, url: string): Promise<FetchAnswer> {
  let res: FetchAnswer;
  try {
    res = (await host.call('http.fetch', { url })) as FetchAnswer;
  } catch (err) {
    const e = err as { name?: string; code?: string; message?: string };
    // The capability bridge's own words for a connection that failed or timed out (sandbox/capabilities.ts).
    if (e.name === 'CapabilityError' && e.code === 'CAPABILITY_DENIED' && /could not be reached/.test(e.message ?? '')) throw new Unreachable(e.message ?? 'unreachable');
    throw err;
  }
  if (res.status >= 500 || res.status === 429) throw new Unreachable(`${where(url)} answered ${res.status}`);
  if (res.status !== 200) {
    const reason = (res.json as { reason?: unknown } | undefined)?.reason;
    fail('WEATHER_REQUEST_REFUSED', `Open-Meteo refused ${where(url)} with ${res.status}: ${typeof reason === 'string' ? reason : (res.body ?? '').slice(0, 200)}`);
  }
  if (res.json === null || typeof res.json !== 'object') fail('WEATHER_REQUEST_REFUSED', `Open-Meteo answered ${where(url)} with something that is not JSON`);
  return res;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const numbers = (v: unknown, n: number): Array<number | null> => (Array.isArray(v) ? v.slice(0, n).map(num) : new Array<number | null>(n).fill(null));

/** Geocodes `query` and fetches its forecast; null when the geocoder knows no such place. */
async function fetchForecast(host: ToolHost, query: string, language: string, now: number): Promise<SavedForecast | null> {
  const search = await get(host, `${GEOCODING}/v1/search?name=${encodeURIComponent(query)}&count=1&language=${language}&format=json`);
  const hit = (search.json as { results?: unknown }).results;
  const first = Array.isArray(hit) ? (hit[0] as Record<string, unknown> | undefined) : undefined;
  if (!first || num(first['latitude']) === null || num(first['longitude']) === null) return null;
  const place: Place = {
    name: typeof first['name'] === 'string' ? first['name'] : query,
    lat: first['latitude'] as number,
    lon: first['longitude'] as number,
    timezone: typeof first['timezone'] === 'string' ? first['timezone'] : null,
    country: typeof first['country'] === 'string' ? first['country'] : null,
  };
  const forecast = await get(host, `${FORECAST}/v1/forecast?latitude=${place.lat}&longitude=${place.lon}&daily=${DAILY}&current=temperature_2m,weather_code&timezone=auto&forecast_days=${FORECAST_DAYS}`);
  const f = forecast.json as { utc_offset_seconds?: unknown; daily?: Record<string, unknown>; current?: Record<string, unknown> };
  const time = Array.isArray(f.daily?.['time']) ? (f.daily['time'] as unknown[]).filter((t): t is string => typeof t === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(t)) : [];
  if (time.length === 0) fail('WEATHER_REQUEST_REFUSED', 'Open-Meteo answered the forecast without daily values');
  const d = f.daily!;
  const n = time.length;
  return {
    v: 1,
    place,
    fetched_at: new Date(now).toISOString(),
    utc_offset_seconds: num(f.utc_offset_seconds) ?? 0,
    daily: {
      time,
      weather_code: numbers(d['weather_code'], n),
      temperature_2m_max: numbers(d['temperature_2m_max'], n),
      temperature_2m_min: numbers(d['temperature_2m_min'], n),
      precipitation_sum: numbers(d['precipitation_sum'], n),
      precipitation_probability_max: numbers(d['precipitation_probability_max'], n),
    },
    current: f.current && typeof f.current['time'] === 'string' ? { time: f.current['time'], temperature_2m: num(f.current['temperature_2m']), weather_code: num(f.current['weather_code']) } : null,
  };
}

/** The date `day` names, counted from `today` (both local to the place); null for a word it does not know. */
function dateOf(day: string, today: string): string | null {
  const base = Date.parse(`${today}T00:00:00Z`);
  if (day === 'today') return today;
  if (day === 'tomorrow') return isoDate(base + DAY_MS);
  if (day === 'day_after_tomorrow') return isoDate(base + 2 * DAY_MS);
  const weekday = (WEEKDAYS as readonly string[]).indexOf(day);
  if (weekday >= 0) return isoDate(base + ((weekday - new Date(base).getUTCDay() + 7) % 7) * DAY_MS);
  if (/^\d{4}-\d{2}-\d{2}$/.test(day) && Number.isFinite(Date.parse(`${day}T00:00:00Z`))) return day;
  return null;
}

export async function invoke(args: Args, host: ToolHost): Promise<Record<string, unknown>> {
  if (!args || typeof args.city !== 'string' || args.city.trim() === '' || args.city.length > 100) fail('VALIDATION_FAILED', 'args must be {city: string (1–100 characters), day?: string, language?: string}');
  const day = (args.day ?? 'today').trim().toLowerCase() || 'today';
  if (dateOf(day, '2000-01-01') === null) fail('VALIDATION_FAILED', `day must be today, tomorrow, day_after_tomorrow, a weekday (monday…sunday) or YYYY-MM-DD, not "${args.day}"`);
  const language = typeof args.language === 'string' && /^[a-z]{2}$/i.test(args.language.trim()) ? args.language.trim().toLowerCase() : 'en';
  const city = args.city.trim();
  const query = city.replace(/_/g, ' ');
  const key = `forecast:${query.toLowerCase()}`;
  const now = Date.now();

  let saved: SavedForecast | null;
  let offline = false;
  try {
    saved = await fetchForecast(host, query, language, now);
    if (saved === null) return { status: 'place_unknown', city };
    // Saved under the name asked and the name Open-Meteo gave ("paris", "париж"): offline, either finds it.
    for (const k of new Set([key, `forecast:${saved.place.name.trim().toLowerCase()}`])) {
      if (k.length <= 256) await host.call('kv.set', { key: k, value: saved as unknown as Record<string, unknown> });
    }
  } catch (err) {
    if (!(err instanceof Unreachable)) throw err;
    saved = (await host.call('kv.get', { key })) as SavedForecast | null;
    if (!saved || saved.v !== 1) fail('WEATHER_UNAVAILABLE', `Open-Meteo cannot be reached (${err.why}) and no forecast for "${city}" was saved here`);
    offline = true;
  }

  const today = isoDate(now + saved.utc_offset_seconds * 1000);
  const date = dateOf(day, today)!;
  const i = saved.daily.time.indexOf(date);
  const ageMinutes = Math.max(0, Math.floor((now - Date.parse(saved.fetched_at)) / 60_000));
  const ageHours = ageMinutes < 60 ? 0 : Math.round(ageMinutes / 60);
  if (i < 0) {
    if (offline) fail('WEATHER_UNAVAILABLE', `Open-Meteo cannot be reached and the forecast for "${city}" saved ${ageMinutes} minutes ago does not reach ${date}`);
    return { status: 'day_out_of_range', city, date, first: saved.daily.time[0], last: saved.daily.time[saved.daily.time.length - 1] };
  }
  const offset = Math.round((Date.parse(`${date}T00:00:00Z`) - Date.parse(`${today}T00:00:00Z`)) / DAY_MS);
  const code = saved.daily.weather_code[i] ?? null;
  const forecast = {
    place: { name: saved.place.name, lat: saved.place.lat, lon: saved.place.lon },
    date,
    summary: skyOf(code),
    weather_code: code,
    precipitation_probability_max: saved.daily.precipitation_probability_max[i] ?? null,
    precipitation_mm: saved.daily.precipitation_sum[i] ?? null,
    temp_max_c: saved.daily.temperature_2m_max[i] ?? null,
    temp_min_c: saved.daily.temperature_2m_min[i] ?? null,
    fetched_at: saved.fetched_at,
    offline,
  };
  // The contract's `weather.forecast` event: emitted as `forecast`, it is `plugin.tool-weather.forecast` on the bus.
  await host.call('events.emit', { topic: 'forecast', payload: forecast });
  // Current conditions only when they are fresh: a saved "now" from hours ago is not now.
  const current = !offline && offset === 0 && saved.current && saved.current.temperature_2m !== null ? { time: saved.current.time, temp_c: saved.current.temperature_2m, weather_code: saved.current.weather_code, summary: skyOf(saved.current.weather_code) } : null;
  return {
    status: 'ok',
    city,
    ...forecast,
    place: { ...forecast.place, timezone: saved.place.timezone, country: saved.place.country },
    day: offset === 0 ? 'today' : offset === 1 ? 'tomorrow' : WEEKDAYS[new Date(Date.parse(`${date}T00:00:00Z`)).getUTCDay()],
    current,
    // The age as it is said: in minutes under an hour, then in whole hours (2 h 59 min is "3 hours"), then days.
    age_minutes: ageMinutes,
    age_hours: ageHours,
    age_days: ageHours < 24 ? 0 : Math.round(ageHours / 24),
  };
}
