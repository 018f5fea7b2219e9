import { describe, expect, it } from 'vitest';
import { createMetricsRegistry, createTesseraMetrics, escapeLabelValue, formatValue, MAX_SERIES, METRIC_NAMES, QUANTILE_WINDOW } from '../../main/runtime/metrics/index.js';

describe('metrics registry', () => {
  it('renders a counter with HELP and TYPE lines, at zero before its first increment', () => {
    const r = createMetricsRegistry();
    const c = r.counter('demo_total', 'Demo events.');
    expect(r.render()).toContain('# HELP demo_total Demo events.\n# TYPE demo_total counter\ndemo_total 0\n');
    c.inc();
    c.inc(undefined, 2.5);
    expect(c.get()).toBe(3.5);
    expect(r.render()).toContain('\ndemo_total 3.5\n');
  });

  it('keeps one series per label set and escapes label values', () => {
    const r = createMetricsRegistry();
    const c = r.counter('req_total', 'Requests.', ['route', 'status']);
    c.inc({ route: '/v1/run', status: 200 });
    c.inc({ route: '/v1/run', status: 200 });
    c.inc({ route: 'a"b\\c\nd', status: 500 });
    const text = r.render();
    expect(text).toContain('req_total{route="/v1/run",status="200"} 2\n');
    expect(text).toContain('req_total{route="a\\"b\\\\c\\nd",status="500"} 1\n');
    expect(escapeLabelValue('x\\"\n')).toBe('x\\\\\\"\\n');
    // A labelled counter with no series yet renders only its HELP and TYPE.
    const r2 = createMetricsRegistry();
    r2.counter('x_total', 'X.', ['a']);
    expect(r2.render()).not.toMatch(/^x_total /m);
  });

  it('refuses unknown labels, bad names, and re-registration with another type or labels', () => {
    const r = createMetricsRegistry();
    const c = r.counter('a_total', 'A.', ['module']);
    expect(() => c.inc({ modul: 'x' })).toThrow(/no label "modul"/);
    expect(() => r.counter('1bad', 'x')).toThrow(/not a valid Prometheus metric name/);
    expect(() => r.counter('ok_total', 'x', ['__reserved'])).toThrow(/not a valid label name/);
    expect(() => r.histogram('h_seconds', 'x', { labelNames: ['le'] })).toThrow(/not a valid label name/);
    expect(() => r.gauge('a_total', 'A.')).toThrow(/already registered as a counter/);
    expect(() => r.counter('a_total', 'A.', ['other'])).toThrow(/already registered/);
    expect(r.counter('a_total', 'A again.', ['module'])).toBe(c);
    expect(() => r.histogram('h', 'x', { buckets: [1, 1] })).toThrow(/strictly increasing/);
  });

  it('ignores negative and non-finite increments and observations', () => {
    const r = createMetricsRegistry();
    const c = r.counter('n_total', 'N.');
    c.inc(undefined, -1);
    c.inc(undefined, Number.NaN);
    const h = r.histogram('d_seconds', 'D.');
    h.observe(-1);
    h.observe(Number.POSITIVE_INFINITY);
    expect(c.get()).toBe(0);
    expect(h.snapshot().count).toBe(0);
  });

  it('renders histogram buckets cumulatively with +Inf, _sum and _count, and the p50/p95/p99 quantiles', () => {
    const r = createMetricsRegistry();
    const h = r.histogram('lat_seconds', 'Latency.', { buckets: [0.01, 0.1, 1] });
    for (let i = 1; i <= 100; i++) h.observe(i / 100); // 0.01 … 1.00
    h.observe(5);
    const text = r.render();
    expect(text).toContain(
      [
        '# HELP lat_seconds Latency.',
        '# TYPE lat_seconds histogram',
        'lat_seconds_bucket{le="0.01"} 1',
        'lat_seconds_bucket{le="0.1"} 10',
        'lat_seconds_bucket{le="1"} 100',
        'lat_seconds_bucket{le="+Inf"} 101',
      ].join('\n'),
    );
    expect(text).toMatch(/\nlat_seconds_sum 55\.5\d*\nlat_seconds_count 101\n/);
    expect(text).toContain('# TYPE lat_seconds_quantiles summary\n');
    expect(text).toContain('lat_seconds_quantiles{quantile="0.5"} 0.51\n');
    expect(text).toContain('lat_seconds_quantiles{quantile="0.95"} 0.96\n');
    expect(text).toContain('lat_seconds_quantiles{quantile="0.99"} 1\n');
    expect(text).toContain('lat_seconds_quantiles_count 101\n');
    expect(h.snapshot()).toMatchObject({ count: 101, p50: 0.51, p95: 0.96, p99: 1 });
  });

  it('computes quantiles over a bounded window of the latest observations', () => {
    const h = createMetricsRegistry().histogram('w_seconds', 'W.');
    for (let i = 0; i < QUANTILE_WINDOW; i++) h.observe(10);
    for (let i = 0; i < QUANTILE_WINDOW; i++) h.observe(0.001);
    expect(h.snapshot()).toMatchObject({ count: 2 * QUANTILE_WINDOW, p50: 0.001, p99: 0.001 });
    expect(Number.isNaN(createMetricsRegistry().histogram('e', 'E.').snapshot().p95)).toBe(true);
  });

  it('labels histogram series and their quantiles', () => {
    const r = createMetricsRegistry();
    const h = r.histogram('mod_seconds', 'M.', { buckets: [1], labelNames: ['module'] });
    h.observe(0.5, { module: 'policy-a@1' });
    h.observe(2, { module: 'permit' });
    const text = r.render();
    expect(text).toContain('mod_seconds_bucket{module="policy-a@1",le="1"} 1\n');
    expect(text).toContain('mod_seconds_bucket{module="permit",le="+Inf"} 1\n');
    expect(text).toContain('mod_seconds_quantiles{module="permit",quantile="0.95"} 2\n');
  });

  it('times with startTimer on a monotonic clock', async () => {
    const h = createMetricsRegistry().histogram('t_seconds', 'T.');
    const stop = h.startTimer();
    await new Promise((r) => setTimeout(r, 20));
    const seconds = stop();
    expect(seconds).toBeGreaterThanOrEqual(0.015);
    expect(h.snapshot().sum).toBe(seconds);
  });

  it('drops series beyond the per-metric limit and counts the drops', () => {
    const r = createMetricsRegistry();
    const c = r.counter('many_total', 'Many.', ['id']);
    for (let i = 0; i < MAX_SERIES + 5; i++) c.inc({ id: i });
    expect(c.get({ id: MAX_SERIES + 1 })).toBe(0);
    expect(r.render()).toContain(`${METRIC_NAMES.seriesDropped}{metric="many_total"} 5\n`);
  });

  it('gauges: set, inc, dec, and values collected at render time', () => {
    const r = createMetricsRegistry();
    const g = r.gauge('g', 'G.');
    g.set(5);
    g.dec(undefined, 2);
    g.inc();
    expect(g.get()).toBe(4);
    let n = 1;
    r.gauge('c', 'C.', { labelNames: ['state'], collect: () => [{ labels: { state: 'a' }, value: n }] });
    r.gauge('broken', 'B.', {
      collect: () => {
        throw new Error('no');
      },
    });
    n = 7;
    const text = r.render();
    expect(text).toContain('\ng 4\n');
    expect(text).toContain('\nc{state="a"} 7\n');
    expect(text).toContain('\nbroken NaN\n');
  });

  it('formats special values as the text format wants', () => {
    expect([formatValue(Number.NaN), formatValue(Infinity), formatValue(-Infinity), formatValue(3), formatValue(0.25)]).toEqual(['NaN', '+Inf', '-Inf', '3', '0.25']);
  });
});

describe('Tessera metrics', () => {
  it('pre-registers every standard metric so a scrape shows them at zero', () => {
    const m = createTesseraMetrics();
    const text = m.render();
    for (const name of Object.values(METRIC_NAMES)) expect(text, name).toContain(`# TYPE ${name} `);
    expect(text).toContain('# TYPE tessera_run_duration_seconds histogram\n');
    expect(text).toContain('tessera_run_duration_seconds_bucket{le="+Inf"} 0\n');
    expect(text).toContain('tessera_run_duration_seconds_quantiles{quantile="0.99"} NaN\n');
    expect(text).toContain('\ntessera_ack_total 0\n');
    m.ack.inc();
    m.webhook.retry.inc();
    m.runDuration.observe(0.004);
    m.moduleDuration.observe(0.001, { module: 'intake' });
    // Asking again by name returns the same metric: modules need not share references.
    m.counter(METRIC_NAMES.ack, 'again').inc();
    const after = m.render();
    expect(after).toContain('\ntessera_ack_total 2\n');
    expect(after).toContain('\ntessera_webhook_retry_total 1\n');
    expect(after).toContain('tessera_run_duration_seconds_bucket{le="0.005"} 1\n');
    expect(after).toContain('tessera_module_duration_seconds_count{module="intake"} 1\n');
  });
});
