/**
 * Cron expressions (seed 001 §4: `cron: "*\/15 * * * *"`) and one-shot times with a timezone.
 *
 * Five fields: minute hour day-of-month month day-of-week, each `*`, a number, a range `a-b`, a step `*\/n` or
 * `a-b/n`, or a comma list of those; months and weekdays also by name (`jan`, `mon`); weekday 0 and 7 are
 * Sunday. As in Vixie cron, when both day fields are restricted a day matches if either does.
 * Time zones are an IANA name (`Europe/Kyiv`) or a fixed offset (`+02:00`); the default is UTC. Across a DST
 * change a wall-clock time that does not exist is skipped and one that happens twice fires once.
 */
import { TesseraError } from '../../common/errors.js';

export interface CronSchedule {
  readonly source: string;
  /** The first fire time strictly after `afterMs`, in epoch ms; undefined if none within 5 years. */
  next(afterMs: number, tz?: string): number | undefined;
}

const NAMES: Record<string, Record<string, number>> = {
  month: { jan: 1, feb: 2, mar: 3, apr: 4, may: 5, jun: 6, jul: 7, aug: 8, sep: 9, oct: 10, nov: 11, dec: 12 },
  dow: { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 },
};
const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: NAMES['month'] },
  { name: 'day-of-week', min: 0, max: 7, names: NAMES['dow'] },
] as const;

function parseField(text: string, spec: (typeof FIELDS)[number], source: string): { set: Set<number>; star: boolean } {
  const set = new Set<number>();
  const value = (v: string): number => {
    const named = 'names' in spec ? spec.names?.[v.toLowerCase()] : undefined;
    const n = named ?? (/^\d+$/.test(v) ? Number(v) : NaN);
    if (!Number.isInteger(n) || n < spec.min || n > spec.max) throw new TesseraError('VALIDATION_FAILED', `cron "${source}": ${spec.name} "${v}" is not in ${spec.min}–${spec.max}`);
    return n;
  };
  for (const part of text.split(',')) {
    const [range = '', stepText] = part.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw new TesseraError('VALIDATION_FAILED', `cron "${source}": step "${stepText}" in ${spec.name} must be a positive integer`);
    let lo: number;
    let hi: number;
    if (range === '*') [lo, hi] = [spec.min, spec.max];
    else if (range.includes('-')) {
      const [a = '', b = ''] = range.split('-');
      [lo, hi] = [value(a), value(b)];
      if (lo > hi) throw new TesseraError('VALIDATION_FAILED', `cron "${source}": range ${range} in ${spec.name} is backwards`);
    } else {
      lo = value(range);
      hi = stepText === undefined ? lo : spec.max;
    }
    for (let v = lo; v <= hi; v += step) set.add(spec.name === 'day-of-week' && v === 7 ? 0 : v);
  }
  return { set, star: text === '*' || text.startsWith('*/') };
}

/** Local calendar fields of an instant in a zone. */
interface Local {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  dow: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Validates a zone: an IANA name this Node knows, or ±HH:MM. */
export function checkTimeZone(tz: string): void {
  if (/^[+-]\d{2}:\d{2}$/.test(tz) || tz === 'UTC') return;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new TesseraError('VALIDATION_FAILED', `"${tz}" is not a time zone (use an IANA name like Europe/Kyiv, or an offset like +02:00)`);
  }
}

function localFields(ms: number, tz: string): Local {
  const offset = /^([+-])(\d{2}):(\d{2})$/.exec(tz);
  if (offset || tz === 'UTC') {
    const shift = offset ? (offset[1] === '-' ? -1 : 1) * (Number(offset[2]) * 60 + Number(offset[3])) * 60_000 : 0;
    const d = new Date(ms + shift);
    return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), dow: d.getUTCDay() };
  }
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', weekday: 'short' });
    formatters.set(tz, f);
  }
  const parts = Object.fromEntries(f.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return { year: Number(parts['year']), month: Number(parts['month']), day: Number(parts['day']), hour: Number(parts['hour']), minute: Number(parts['minute']), dow: NAMES['dow']![String(parts['weekday']).slice(0, 3).toLowerCase()]! };
}

export function parseCron(source: string): CronSchedule {
  const fields = source.trim().split(/\s+/);
  if (fields.length !== 5) throw new TesseraError('VALIDATION_FAILED', `cron "${source}" must have 5 fields (minute hour day-of-month month day-of-week), not ${fields.length}`);
  const [minute, hour, dom, month, dow] = fields.map((f, i) => parseField(f, FIELDS[i]!, source)) as [ReturnType<typeof parseField>, ReturnType<typeof parseField>, ReturnType<typeof parseField>, ReturnType<typeof parseField>, ReturnType<typeof parseField>];
  const dayMatches = (l: Local) => {
    const d = dom.set.has(l.day);
    const w = dow.set.has(l.dow);
    if (dom.star && dow.star) return true;
    if (dom.star) return w;
    if (dow.star) return d;
    return d || w;
  };
  return {
    source,
    next(afterMs, tz = 'UTC') {
      // Walk whole minutes; skip a day at a time when the day cannot match, an hour when the hour cannot.
      let t = Math.floor(afterMs / 60_000) * 60_000 + 60_000;
      const limit = afterMs + 5 * 366 * 24 * 3600_000;
      while (t <= limit) {
        const l = localFields(t, tz);
        if (!month.set.has(l.month) || !dayMatches(l)) {
          t += ((23 - l.hour) * 60 + (60 - l.minute)) * 60_000;
          continue;
        }
        if (!hour.set.has(l.hour)) {
          t += (60 - l.minute) * 60_000;
          continue;
        }
        if (minute.set.has(l.minute)) return t;
        t += 60_000;
      }
      return undefined;
    },
  };
}

/** A one-shot time: ISO-8601 with an offset (`2025-09-21T07:00:00+02:00`) or Z. */
export function parseAt(text: string): number {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text)) {
    throw new TesseraError('VALIDATION_FAILED', `at "${text}" must be an ISO-8601 time with a timezone offset, like 2025-09-21T07:00:00+02:00`);
  }
  const ms = Date.parse(text);
  if (!Number.isFinite(ms)) throw new TesseraError('VALIDATION_FAILED', `at "${text}" is not a valid time`);
  return ms;
}
