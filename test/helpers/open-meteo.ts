/**
 * A protocol-faithful Open-Meteo on 127.0.0.1 (issue 15 §6): the two endpoints tool-weather uses, answering the
 * same paths, parameters and JSON shapes as https://geocoding-api.open-meteo.com and https://api.open-meteo.com
 * (open-meteo.com/en/docs, /en/docs/geocoding-api):
 *
 * - `GET /v1/search?name=&count=&language=&format=json` → `{results: [{id, name, latitude, longitude, elevation,
 *   feature_code, country_code, admin1, timezone, population, country_id, country}], generationtime_ms}`, names in
 *   `language` when known; no match → `{generationtime_ms}` with no `results` key (as the real one); a name under
 *   2 characters matches nothing.
 * - `GET /v1/forecast?latitude=&longitude=&daily=…&current=…&timezone=auto&forecast_days=N` →
 *   `{latitude, longitude, generationtime_ms, utc_offset_seconds, timezone, timezone_abbreviation, elevation,
 *   current_units, current, daily_units, daily}`, daily arrays starting at the place's local date of the server's
 *   clock.
 * - Errors as Open-Meteo gives them: HTTP 400 `{"error":true,"reason":"…"}` for a missing or invalid parameter
 *   (an unknown daily/current variable, a latitude outside ±90, forecast_days outside 0…16, a timezone other than
 *   `auto` or a known one, format other than json).
 *
 * Knobs for tests: the clock (`now`), a day's weather per place (`setDay`), variables it stops knowing
 * (`withdrawn`), `mode` (`ok`; `unavailable`: 503 with
 * an error body; `drop`: the connection is destroyed without an answer), and every request seen (`requests`).
 * Both origins map onto this one server (the paths do not overlap), e.g. with `TESSERA_HTTP_ORIGIN_MAP`.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';

export interface FakePlace {
  id: number;
  names: Record<string, string>;
  latitude: number;
  longitude: number;
  elevation: number;
  country_code: string;
  country: Record<string, string>;
  admin1: string;
  timezone: string;
  /** The zone's offset in December (these fixtures do not model daylight saving). */
  utc_offset_seconds: number;
  abbreviation: string;
  population: number;
}

export interface FakeDay {
  weather_code: number;
  temperature_2m_max: number;
  temperature_2m_min: number;
  precipitation_sum: number;
  precipitation_probability_max: number | null;
}

/** Real coordinates and time zones (GeoNames, as the real geocoder answers). */
export const PLACES: readonly FakePlace[] = [
  { id: 2988507, names: { en: 'Paris', ru: 'Париж', uk: 'Париж', fr: 'Paris' }, latitude: 48.85341, longitude: 2.3488, elevation: 42, country_code: 'FR', country: { en: 'France', ru: 'Франция', uk: 'Франція' }, admin1: 'Île-de-France', timezone: 'Europe/Paris', utc_offset_seconds: 3600, abbreviation: 'GMT+1', population: 2138551 },
  { id: 2950159, names: { en: 'Berlin', ru: 'Берлин', uk: 'Берлін', de: 'Berlin' }, latitude: 52.52437, longitude: 13.41053, elevation: 74, country_code: 'DE', country: { en: 'Germany', ru: 'Германия', uk: 'Німеччина' }, admin1: 'Land Berlin', timezone: 'Europe/Berlin', utc_offset_seconds: 3600, abbreviation: 'GMT+1', population: 3426354 },
  { id: 702550, names: { en: 'Lviv', ru: 'Львов', uk: 'Львів' }, latitude: 49.83826, longitude: 24.02324, elevation: 296, country_code: 'UA', country: { en: 'Ukraine', ru: 'Украина', uk: 'Україна' }, admin1: 'Lviv', timezone: 'Europe/Kyiv', utc_offset_seconds: 7200, abbreviation: 'GMT+2', population: 717803 },
  { id: 703448, names: { en: 'Kyiv', ru: 'Киев', uk: 'Київ' }, latitude: 50.45466, longitude: 30.5238, elevation: 187, country_code: 'UA', country: { en: 'Ukraine', ru: 'Украина', uk: 'Україна' }, admin1: 'Kyiv City', timezone: 'Europe/Kyiv', utc_offset_seconds: 7200, abbreviation: 'GMT+2', population: 2797553 },
  { id: 2643743, names: { en: 'London', ru: 'Лондон', uk: 'Лондон' }, latitude: 51.50853, longitude: -0.12574, elevation: 25, country_code: 'GB', country: { en: 'United Kingdom', ru: 'Великобритания', uk: 'Велика Британія' }, admin1: 'England', timezone: 'Europe/London', utc_offset_seconds: 0, abbreviation: 'GMT', population: 8961989 },
  { id: 5128581, names: { en: 'New York', ru: 'Нью-Йорк', uk: 'Нью-Йорк' }, latitude: 40.71427, longitude: -74.00597, elevation: 10, country_code: 'US', country: { en: 'United States', ru: 'США', uk: 'США' }, admin1: 'New York', timezone: 'America/New_York', utc_offset_seconds: -18000, abbreviation: 'GMT-5', population: 8804190 },
  { id: 3143244, names: { en: 'Oslo', ru: 'Осло', uk: 'Осло' }, latitude: 59.91273, longitude: 10.74609, elevation: 26, country_code: 'NO', country: { en: 'Norway', ru: 'Норвегия', uk: 'Норвегія' }, admin1: 'Oslo', timezone: 'Europe/Oslo', utc_offset_seconds: 3600, abbreviation: 'GMT+1', population: 580000 },
];

const DAILY_VARIABLES = new Set(['weather_code', 'weathercode', 'temperature_2m_max', 'temperature_2m_min', 'precipitation_sum', 'precipitation_probability_max', 'precipitation_hours', 'rain_sum', 'snowfall_sum', 'sunrise', 'sunset', 'wind_speed_10m_max']);
const CURRENT_VARIABLES = new Set(['temperature_2m', 'weather_code', 'weathercode', 'relative_humidity_2m', 'apparent_temperature', 'is_day', 'precipitation', 'rain', 'cloud_cover', 'wind_speed_10m']);
const UNITS: Record<string, string> = { time: 'iso8601', weather_code: 'wmo code', weathercode: 'wmo code', temperature_2m: '°C', temperature_2m_max: '°C', temperature_2m_min: '°C', precipitation_sum: 'mm', precipitation_probability_max: '%', interval: 'seconds' };

export interface FakeOpenMeteo {
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string;
  /** `TESSERA_HTTP_ORIGIN_MAP` value sending both Open-Meteo origins here. */
  readonly originMap: string;
  /** Path and query of every request, in order. */
  readonly requests: string[];
  /** The server's clock (epoch ms): which local date the daily arrays start at. */
  now: number;
  mode: 'ok' | 'unavailable' | 'drop';
  /** Variables the server no longer knows (as after an API change): asking for one is a 400. */
  readonly withdrawn: Set<string>;
  /** The weather of one local date at a place (by its English name); other days get a plain default. */
  setDay(place: string, date: string, day: Partial<FakeDay>): void;
  close(): Promise<void>;
}

const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Deterministic weather for days nobody set: dry, a little cloud, temperatures from the date. */
function defaultDay(place: FakePlace, date: string): FakeDay {
  const d = Number(date.slice(8, 10));
  return { weather_code: 2, temperature_2m_max: Math.round((4 + (d % 5) + place.latitude / 100) * 10) / 10, temperature_2m_min: Math.round((-1 + (d % 3)) * 10) / 10, precipitation_sum: 0, precipitation_probability_max: 10 };
}

export async function startFakeOpenMeteo(options: { now: number }): Promise<FakeOpenMeteo> {
  const days = new Map<string, Partial<FakeDay>>();
  const requests: string[] = [];
  const withdrawn = new Set<string>();
  const state = { now: options.now, mode: 'ok' as FakeOpenMeteo['mode'] };
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    if (state.mode === 'drop') {
      req.socket.destroy();
      return;
    }
    const send = (status: number, body: unknown) => {
      res.statusCode = status;
      res.setHeader('content-type', 'application/json; charset=utf-8');
      res.end(JSON.stringify(body));
    };
    const refuse = (reason: string) => send(400, { error: true, reason });
    if (state.mode === 'unavailable') return send(503, { error: true, reason: 'Service temporarily unavailable' });
    const url = new URL(req.url ?? '/', 'http://fake');
    const q = url.searchParams;
    if (req.method !== 'GET') return refuse(`Method ${req.method} not allowed`);
    if (url.pathname === '/v1/search') {
      const name = q.get('name');
      if (name === null) return refuse("Parameter 'name' is required");
      const format = q.get('format') ?? 'json';
      if (format !== 'json' && format !== 'protobuf') return refuse(`Cannot initialize ResponseFormat from invalid String value ${format} for key format`);
      const count = Number(q.get('count') ?? '10');
      if (!Number.isInteger(count) || count < 1 || count > 100) return refuse('Parameter count must be between 1 and 100.');
      const language = (q.get('language') ?? 'en').toLowerCase();
      const wanted = name.trim().toLowerCase();
      const found = wanted.length < 2 ? [] : PLACES.filter((p) => Object.values(p.names).some((n) => n.toLowerCase() === wanted || (wanted.length >= 3 && n.toLowerCase().startsWith(wanted))));
      const results = found.slice(0, count).map((p) => ({
        id: p.id,
        name: p.names[language] ?? p.names['en'],
        latitude: p.latitude,
        longitude: p.longitude,
        elevation: p.elevation,
        feature_code: 'PPLC',
        country_code: p.country_code,
        admin1_id: p.id + 1,
        timezone: p.timezone,
        population: p.population,
        country_id: p.id + 2,
        country: p.country[language] ?? p.country['en'],
        admin1: p.admin1,
      }));
      return send(200, results.length > 0 ? { results, generationtime_ms: 0.71 } : { generationtime_ms: 0.42 });
    }
    if (url.pathname === '/v1/forecast') {
      const lat = Number(q.get('latitude'));
      const lon = Number(q.get('longitude'));
      if (q.get('latitude') === null || q.get('longitude') === null) return refuse("Parameter 'latitude' and 'longitude' must have the same number of elements");
      if (!Number.isFinite(lat) || lat < -90 || lat > 90) return refuse(`Latitude must be in range of -90 to 90°. Given: ${q.get('latitude')}.`);
      if (!Number.isFinite(lon) || lon < -180 || lon > 180) return refuse(`Longitude must be in range of -180 to 180°. Given: ${q.get('longitude')}.`);
      const daily = (q.get('daily') ?? '').split(',').filter(Boolean);
      const current = (q.get('current') ?? '').split(',').filter(Boolean);
      for (const v of daily) if (!DAILY_VARIABLES.has(v) || withdrawn.has(v)) return refuse(`Cannot initialize ForecastVariableDaily from invalid String value ${v} for key daily`);
      for (const v of current) if (!CURRENT_VARIABLES.has(v) || withdrawn.has(v)) return refuse(`Cannot initialize SurfaceAndPressureVariable<ForecastSurfaceVariable, ForecastPressureVariable> from invalid String value ${v} for key current`);
      const forecastDays = Number(q.get('forecast_days') ?? '7');
      if (!Number.isInteger(forecastDays) || forecastDays < 0 || forecastDays > 16) return refuse('Forecast days is invalid. Allowed range 0 to 16.');
      const timezone = q.get('timezone') ?? 'GMT';
      const place = PLACES.reduce((best, p) => (Math.hypot(p.latitude - lat, p.longitude - lon) < Math.hypot(best.latitude - lat, best.longitude - lon) ? p : best));
      const known = PLACES.some((p) => p.timezone === timezone) || timezone === 'GMT' || timezone === 'UTC';
      if (timezone !== 'auto' && !known) return refuse(`Invalid timezone ${timezone}`);
      const offset = timezone === 'auto' || timezone === place.timezone ? place.utc_offset_seconds : 0;
      const localNow = state.now + offset * 1000;
      const first = Date.parse(`${isoDate(localNow)}T00:00:00Z`);
      const dates = Array.from({ length: forecastDays }, (_, i) => isoDate(first + i * 86_400_000));
      const dayOf = (date: string): FakeDay => ({ ...defaultDay(place, date), ...days.get(`${place.names['en']}|${date}`) });
      const body: Record<string, unknown> = {
        latitude: Math.round(lat * 1000) / 1000,
        longitude: Math.round(lon * 1000) / 1000,
        generationtime_ms: 0.093,
        utc_offset_seconds: offset,
        timezone: timezone === 'auto' ? place.timezone : timezone,
        timezone_abbreviation: timezone === 'auto' || timezone === place.timezone ? place.abbreviation : 'GMT',
        elevation: place.elevation,
      };
      if (current.length > 0) {
        const minute = Math.floor(localNow / 900_000) * 900_000;
        const today = dayOf(dates[0] ?? isoDate(localNow));
        body['current_units'] = Object.fromEntries(['time', 'interval', ...current].map((v) => [v, UNITS[v] ?? '']));
        body['current'] = Object.fromEntries([['time', new Date(minute).toISOString().slice(0, 16)], ['interval', 900], ...current.map((v) => [v, v === 'temperature_2m' ? Math.round(((today.temperature_2m_max + today.temperature_2m_min) / 2) * 10) / 10 : v === 'weather_code' || v === 'weathercode' ? today.weather_code : 0])]);
      }
      if (daily.length > 0) {
        body['daily_units'] = Object.fromEntries(['time', ...daily].map((v) => [v, UNITS[v] ?? '']));
        body['daily'] = Object.fromEntries([['time', dates], ...daily.map((v) => [v, dates.map((d) => (dayOf(d) as unknown as Record<string, unknown>)[v === 'weathercode' ? 'weather_code' : v] ?? 0)])]);
      }
      return send(200, body);
    }
    res.statusCode = 404;
    res.setHeader('content-type', 'text/plain');
    res.end('Not Found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    originMap: `https://geocoding-api.open-meteo.com=${origin},https://api.open-meteo.com=${origin}`,
    requests,
    withdrawn,
    get now() {
      return state.now;
    },
    set now(v: number) {
      state.now = v;
    },
    get mode() {
      return state.mode;
    },
    set mode(v: FakeOpenMeteo['mode']) {
      state.mode = v;
    },
    setDay(place, date, day) {
      days.set(`${place}|${date}`, { ...days.get(`${place}|${date}`), ...day });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
