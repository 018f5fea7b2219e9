/**
 * Metrics (issue 5 point 9, seed 004 §5): a small in-process Prometheus registry rendered in the text
 * exposition format 0.0.4 by `GET /metrics`.
 *
 * - Counters, gauges (set directly or computed at scrape time by a `collect` callback) and histograms.
 * - Every histogram is also reported as quantiles p50/p95/p99: a companion summary family
 *   `<name>_quantiles{quantile="0.5"|"0.95"|"0.99"}` computed exactly over the last
 *   {@link QUANTILE_WINDOW} observations of each label set (a bounded window, so memory stays flat), with
 *   cumulative `_sum` and `_count` like the histogram's.
 * - Asking for a metric that exists returns the same instance (same type and labels required), so any module
 *   can say `metrics.counter('tessera_ack_total', '…').inc()` without holding a reference.
 * - Each metric keeps at most {@link MAX_SERIES} label sets; further label sets are dropped (counted in
 *   `tessera_metrics_series_dropped_total`), so an unbounded label value cannot exhaust memory.
 *
 * Recording is synchronous, allocation-light and never throws for label values; a wrong label *name* is a
 * programming error and throws VALIDATION_FAILED.
 */
import { TesseraError } from '../../common/errors.js';

/** Label values by label name. Missing declared labels are rendered as `""` (Prometheus: absent). */
export type Labels = Readonly<Record<string, string | number>>;

export interface Counter {
  /** Adds `n` (default 1, must be ≥ 0) to the series of `labels`. */
  inc(labels?: Labels, n?: number): void;
  /** Current value of a series (0 when it was never incremented). */
  get(labels?: Labels): number;
}

export interface Gauge {
  set(value: number, labels?: Labels): void;
  inc(labels?: Labels, n?: number): void;
  dec(labels?: Labels, n?: number): void;
  get(labels?: Labels): number;
}

export interface QuantileSnapshot {
  count: number;
  sum: number;
  /** Over the last {@link QUANTILE_WINDOW} observations; `NaN` when there are none. */
  p50: number;
  p95: number;
  p99: number;
}

export interface Histogram {
  /** Records one duration (or any value) in seconds. Negative and non-finite values are ignored. */
  observe(seconds: number, labels?: Labels): void;
  /** Starts a timer; calling the result observes the elapsed seconds (monotonic clock) and returns them. */
  startTimer(labels?: Labels): () => number;
  /** Count, sum and window quantiles of one series. */
  snapshot(labels?: Labels): QuantileSnapshot;
}

export interface HistogramOptions {
  /** Upper bounds in seconds, increasing; `+Inf` is added. Default {@link DEFAULT_BUCKETS}. */
  buckets?: readonly number[];
  labelNames?: readonly string[];
}

export interface GaugeOptions {
  labelNames?: readonly string[];
  /** Called at every render to produce the current value(s); overrides values set by `set`. */
  collect?: () => number | ReadonlyArray<{ labels?: Labels; value: number }>;
}

export interface MetricsRegistry {
  counter(name: string, help: string, labelNames?: readonly string[]): Counter;
  gauge(name: string, help: string, options?: GaugeOptions): Gauge;
  histogram(name: string, help: string, options?: HistogramOptions): Histogram;
  /** Every metric in the Prometheus text exposition format 0.0.4 (ends with a newline). */
  render(): string;
  /** Names of the registered metric families, in registration order. */
  names(): string[];
}

/** The metric names Tessera registers at start, so they appear (at zero) before the first event. */
export const METRIC_NAMES = {
  runDuration: 'tessera_run_duration_seconds',
  moduleDuration: 'tessera_module_duration_seconds',
  httpDuration: 'tessera_http_request_duration_seconds',
  ack: 'tessera_ack_total',
  nack: 'tessera_nack_total',
  ask: 'tessera_ask_total',
  replayBlocked: 'tessera_replay_blocked_total',
  permitIssued: 'tessera_permit_issued_total',
  webhookAttempts: 'tessera_webhook_attempts_total',
  webhookSuccess: 'tessera_webhook_success_total',
  webhookFail: 'tessera_webhook_fail_total',
  webhookRetry: 'tessera_webhook_retry_total',
  seriesDropped: 'tessera_metrics_series_dropped_total',
} as const;

/** Registry plus typed handles on the metrics Tessera pre-registers (see {@link METRIC_NAMES}). */
export interface TesseraMetrics extends MetricsRegistry {
  /** Whole `POST /v1/run` pipeline, seconds. No labels. */
  readonly runDuration: Histogram;
  /** One pipeline module (`intake`, `policy-x@1`, `permit`, `receipts`…), label `module`. */
  readonly moduleDuration: Histogram;
  /** HTTP request latency of `/v1` routes, labels `method`, `route` (the route pattern), `status`. */
  readonly httpDuration: Histogram;
  readonly ack: Counter;
  readonly nack: Counter;
  readonly ask: Counter;
  readonly replayBlocked: Counter;
  readonly permitIssued: Counter;
  /** Webhook delivery attempts (every POST tried), successes (2xx), final failures (gave up), retries scheduled. */
  readonly webhook: { readonly attempts: Counter; readonly success: Counter; readonly fail: Counter; readonly retry: Counter };
}

/** Seconds; suits request latencies from 0.5 ms to 10 s. */
export const DEFAULT_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Observations per series kept for the quantiles. */
export const QUANTILE_WINDOW = 1024;
/** Label sets per metric family beyond which new series are dropped. */
export const MAX_SERIES = 1000;
const QUANTILES = [0.5, 0.95, 0.99] as const;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

type Kind = 'counter' | 'gauge' | 'histogram';

interface Family {
  name: string;
  help: string;
  kind: Kind;
  labelNames: readonly string[];
  /** Key (label values joined) → series; insertion-ordered. */
  series: Map<string, unknown>;
  render(out: string[]): void;
  handle: Counter | Gauge | Histogram;
  /** For histograms: the bounds, compared when the histogram is asked for again. */
  buckets?: readonly number[];
}

interface HistogramSeries {
  labels: string[];
  counts: Float64Array;
  sum: number;
  count: number;
  window: Float64Array;
  windowSize: number;
  windowNext: number;
}

/** A new, empty registry (no pre-registered metrics). */
export function createMetricsRegistry(): MetricsRegistry {
  const families = new Map<string, Family>();

  const keyOf = (family: Family, labels: Labels | undefined): { key: string; values: string[] } => {
    const names = family.labelNames;
    if (labels !== undefined) {
      for (const name in labels) {
        if (!names.includes(name)) {
          throw new TesseraError('VALIDATION_FAILED', `Metric ${family.name} has no label "${name}"; its labels are: ${names.length ? names.join(', ') : '(none)'}.`);
        }
      }
    }
    if (names.length === 0) return { key: '', values: [] };
    const values = names.map((n) => {
      const v = labels?.[n];
      return v === undefined ? '' : String(v);
    });
    return { key: values.join('\u0000'), values };
  };

  /** The series for `labels`, created on first use; undefined when the family is full (the value is dropped). */
  const seriesOf = <T>(family: Family, labels: Labels | undefined, make: (values: string[]) => T): T | undefined => {
    const { key, values } = keyOf(family, labels);
    let s = family.series.get(key) as T | undefined;
    if (s === undefined) {
      if (family.series.size >= MAX_SERIES) {
        if (family.name !== METRIC_NAMES.seriesDropped) dropped.inc({ metric: family.name });
        return undefined;
      }
      s = make(values);
      family.series.set(key, s);
    }
    return s;
  };

  const existing = (name: string, kind: Kind, labelNames: readonly string[]): Family | undefined => {
    const f = families.get(name);
    if (f === undefined) return undefined;
    if (f.kind !== kind || f.labelNames.join(',') !== labelNames.join(',')) {
      throw new TesseraError('VALIDATION_FAILED', `Metric ${name} is already registered as a ${f.kind} with labels [${f.labelNames.join(', ')}].`);
    }
    return f;
  };

  const checkNames = (name: string, labelNames: readonly string[], reserved: readonly string[]) => {
    if (!METRIC_NAME.test(name)) throw new TesseraError('VALIDATION_FAILED', `"${name}" is not a valid Prometheus metric name.`);
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith('__') || reserved.includes(l)) {
        throw new TesseraError('VALIDATION_FAILED', `"${l}" is not a valid label name for metric ${name}.`);
      }
    }
    if (new Set(labelNames).size !== labelNames.length) throw new TesseraError('VALIDATION_FAILED', `Metric ${name} declares a label twice.`);
    for (const suffix of ['_bucket', '_sum', '_count', '_quantiles']) {
      for (const other of families.values()) {
        if (other.kind === 'histogram' && (name === other.name + suffix || name === other.name + '_quantiles' + suffix)) {
          throw new TesseraError('VALIDATION_FAILED', `Metric ${name} collides with the samples of histogram ${other.name}.`);
        }
      }
    }
  };

  const header = (out: string[], name: string, help: string, type: string) => {
    out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
  };

  const registry: MetricsRegistry = {
    counter(name, help, labelNames = []) {
      const found = existing(name, 'counter', labelNames);
      if (found) return found.handle as Counter;
      checkNames(name, labelNames, []);
      const family: Family = {
        name,
        help,
        kind: 'counter',
        labelNames: [...labelNames],
        series: new Map(),
        handle: undefined as unknown as Counter,
        render(out) {
          header(out, name, help, 'counter');
          if (this.series.size === 0 && this.labelNames.length === 0) out.push(`${name} 0`);
          for (const s of this.series.values() as Iterable<{ labels: string[]; value: number }>) {
            out.push(`${name}${labelText(this.labelNames, s.labels)} ${formatValue(s.value)}`);
          }
        },
      };
      const make = (values: string[]) => ({ labels: values, value: 0 });
      family.handle = {
        inc(labels, n = 1) {
          if (!(n >= 0) || !Number.isFinite(n)) return;
          const s = seriesOf(family, labels, make);
          if (s) s.value += n;
        },
        get(labels) {
          return (family.series.get(keyOf(family, labels).key) as { value: number } | undefined)?.value ?? 0;
        },
      };
      families.set(name, family);
      return family.handle as Counter;
    },

    gauge(name, help, options = {}) {
      const labelNames = options.labelNames ?? [];
      const found = existing(name, 'gauge', labelNames);
      if (found) return found.handle as Gauge;
      checkNames(name, labelNames, []);
      const collect = options.collect;
      const family: Family = {
        name,
        help,
        kind: 'gauge',
        labelNames: [...labelNames],
        series: new Map(),
        handle: undefined as unknown as Gauge,
        render(out) {
          header(out, name, help, 'gauge');
          if (collect) {
            let produced: ReturnType<NonNullable<GaugeOptions['collect']>>;
            try {
              produced = collect();
            } catch {
              produced = Number.NaN;
            }
            const rows = typeof produced === 'number' ? [{ value: produced }] : produced;
            for (const row of rows) {
              const { values } = keyOf(this, 'labels' in row ? row.labels : undefined);
              out.push(`${name}${labelText(this.labelNames, values)} ${formatValue(row.value)}`);
            }
            return;
          }
          if (this.series.size === 0 && this.labelNames.length === 0) out.push(`${name} 0`);
          for (const s of this.series.values() as Iterable<{ labels: string[]; value: number }>) {
            out.push(`${name}${labelText(this.labelNames, s.labels)} ${formatValue(s.value)}`);
          }
        },
      };
      const make = (values: string[]) => ({ labels: values, value: 0 });
      const add = (labels: Labels | undefined, n: number) => {
        const s = seriesOf(family, labels, make);
        if (s) s.value += n;
      };
      family.handle = {
        set(value, labels) {
          const s = seriesOf(family, labels, make);
          if (s) s.value = value;
        },
        inc: (labels, n = 1) => add(labels, n),
        dec: (labels, n = 1) => add(labels, -n),
        get(labels) {
          return (family.series.get(keyOf(family, labels).key) as { value: number } | undefined)?.value ?? 0;
        },
      };
      families.set(name, family);
      return family.handle as Gauge;
    },

    histogram(name, help, options = {}) {
      const labelNames = options.labelNames ?? [];
      const buckets = [...(options.buckets ?? DEFAULT_BUCKETS)];
      const found = existing(name, 'histogram', labelNames);
      if (found) {
        if (options.buckets !== undefined && found.buckets?.join(',') !== buckets.join(',')) {
          throw new TesseraError('VALIDATION_FAILED', `Histogram ${name} is already registered with other buckets.`);
        }
        return found.handle as Histogram;
      }
      checkNames(name, labelNames, ['le', 'quantile']);
      if (buckets.length === 0 || buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!))) {
        throw new TesseraError('VALIDATION_FAILED', `Histogram ${name}: buckets must be finite and strictly increasing.`);
      }
      const bounds = Float64Array.from(buckets);
      const family: Family = {
        name,
        help,
        kind: 'histogram',
        labelNames: [...labelNames],
        series: new Map(),
        buckets,
        handle: undefined as unknown as Histogram,
        render(out) {
          const all = [...(this.series.values() as Iterable<HistogramSeries>)];
          if (all.length === 0 && this.labelNames.length === 0) all.push(makeSeries([]));
          header(out, name, help, 'histogram');
          for (const s of all) {
            let cumulative = 0;
            for (let i = 0; i < bounds.length; i++) {
              cumulative += s.counts[i]!;
              out.push(`${name}_bucket${labelText(this.labelNames, s.labels, ['le', formatValue(bounds[i]!)])} ${cumulative}`);
            }
            out.push(`${name}_bucket${labelText(this.labelNames, s.labels, ['le', '+Inf'])} ${s.count}`);
            out.push(`${name}_sum${labelText(this.labelNames, s.labels)} ${formatValue(s.sum)}`);
            out.push(`${name}_count${labelText(this.labelNames, s.labels)} ${s.count}`);
          }
          const q = `${name}_quantiles`;
          header(out, q, `${help} Quantiles over the last ${QUANTILE_WINDOW} observations.`, 'summary');
          for (const s of all) {
            const values = quantilesOf(s);
            QUANTILES.forEach((quantile, i) => {
              out.push(`${q}${labelText(this.labelNames, s.labels, ['quantile', String(quantile)])} ${formatValue(values[i]!)}`);
            });
            out.push(`${q}_sum${labelText(this.labelNames, s.labels)} ${formatValue(s.sum)}`);
            out.push(`${q}_count${labelText(this.labelNames, s.labels)} ${s.count}`);
          }
        },
      };
      const makeSeries = (values: string[]): HistogramSeries => ({
        labels: values,
        counts: new Float64Array(bounds.length),
        sum: 0,
        count: 0,
        window: new Float64Array(QUANTILE_WINDOW),
        windowSize: 0,
        windowNext: 0,
      });
      const observe = (seconds: number, labels?: Labels) => {
        if (!(seconds >= 0) || !Number.isFinite(seconds)) return;
        const s = seriesOf(family, labels, makeSeries);
        if (s === undefined) return;
        let i = 0;
        while (i < bounds.length && seconds > bounds[i]!) i++;
        if (i < bounds.length) s.counts[i]!++;
        s.sum += seconds;
        s.count++;
        s.window[s.windowNext] = seconds;
        s.windowNext = (s.windowNext + 1) % QUANTILE_WINDOW;
        if (s.windowSize < QUANTILE_WINDOW) s.windowSize++;
      };
      family.handle = {
        observe,
        startTimer(labels) {
          const start = process.hrtime.bigint();
          return () => {
            const seconds = Number(process.hrtime.bigint() - start) / 1e9;
            observe(seconds, labels);
            return seconds;
          };
        },
        snapshot(labels) {
          const s = family.series.get(keyOf(family, labels).key) as HistogramSeries | undefined;
          if (s === undefined) return { count: 0, sum: 0, p50: Number.NaN, p95: Number.NaN, p99: Number.NaN };
          const [p50, p95, p99] = quantilesOf(s);
          return { count: s.count, sum: s.sum, p50: p50!, p95: p95!, p99: p99! };
        },
      };
      families.set(name, family);
      return family.handle as Histogram;
    },

    render() {
      const out: string[] = [];
      for (const family of families.values()) family.render(out);
      return out.join('\n') + '\n';
    },

    names: () => [...families.keys()],
  };
  // Declared after the registry it belongs to; only used once a metric is full, long after this line ran.
  const dropped = registry.counter(METRIC_NAMES.seriesDropped, 'Observations dropped because a metric reached its limit of label sets.', ['metric']);
  return registry;
}

/** A registry with Tessera's standard metrics pre-registered (they render at zero until used). */
export function createTesseraMetrics(): TesseraMetrics {
  const r = createMetricsRegistry();
  const n = METRIC_NAMES;
  return {
    ...r,
    runDuration: r.histogram(n.runDuration, 'Duration of a POST /v1/run pipeline (intake to enrich), in seconds.'),
    moduleDuration: r.histogram(n.moduleDuration, 'Duration of one pipeline module, in seconds.', { labelNames: ['module'] }),
    httpDuration: r.histogram(n.httpDuration, 'Latency of /v1 HTTP requests, in seconds.', { labelNames: ['method', 'route', 'status'] }),
    ack: r.counter(n.ack, 'Runs whose combined verdict was ACK.'),
    nack: r.counter(n.nack, 'Runs whose combined verdict was NACK.'),
    ask: r.counter(n.ask, 'Runs whose combined verdict was ASK (consent requested).'),
    replayBlocked: r.counter(n.replayBlocked, 'Requests refused because their (src, nonce) was already used.'),
    permitIssued: r.counter(n.permitIssued, 'Permits signed by this device.'),
    webhook: {
      attempts: r.counter(n.webhookAttempts, 'Webhook delivery attempts (HTTP POSTs tried).'),
      success: r.counter(n.webhookSuccess, 'Webhook deliveries acknowledged with a 2xx status.'),
      fail: r.counter(n.webhookFail, 'Webhook deliveries given up after their last attempt.'),
      retry: r.counter(n.webhookRetry, 'Webhook delivery retries scheduled after a failed attempt.'),
    },
  };
}

/** Prometheus sample value: integers as integers, `+Inf`, `-Inf`, `NaN`. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Label value escaping of the text format: backslash, double quote and line feed. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function labelText(names: readonly string[], values: readonly string[], extra?: readonly [string, string]): string {
  const parts: string[] = [];
  for (let i = 0; i < names.length; i++) parts.push(`${names[i]}="${escapeLabelValue(values[i] ?? '')}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** Exact quantiles (nearest rank) over the series' window; NaN when it is empty. */
function quantilesOf(s: HistogramSeries): number[] {
  if (s.windowSize === 0) return QUANTILES.map(() => Number.NaN);
  const sorted = s.window.slice(0, s.windowSize).sort();
  return QUANTILES.map((q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!);
}
