/**
 * `GET /metrics` over real HTTP (issue 5 point 9): bearer auth, the Prometheus text format 0.0.4 checked line by
 * line by a small parser, and counters that move when real things happen (a webhook delivered to a real
 * receiver, /v1 requests).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cidOf } from '../../main/common/cid.js';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { METRIC_NAMES } from '../../main/runtime/metrics/index.js';

interface Family {
  type: string;
  help: string;
  samples: Array<{ name: string; labels: Record<string, string>; value: number }>;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*",?)*)\\})? (NaN|[+-]Inf|-?\\d+(?:\\.\\d+)?(?:e[+-]?\\d+)?)$`);
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"/g;

/** Parses the text exposition format strictly: every line is HELP, TYPE or a well-formed sample of a declared family. */
function parsePrometheus(text: string): Map<string, Family> {
  expect(text.endsWith('\n')).toBe(true);
  const families = new Map<string, Family>();
  let current: string | undefined;
  for (const line of text.slice(0, -1).split('\n')) {
    const help = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line);
    if (help) {
      expect(families.has(help[1]!), `family ${help[1]} declared twice`).toBe(false);
      families.set(help[1]!, { type: '', help: help[2]!, samples: [] });
      current = help[1];
      continue;
    }
    const type = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line);
    if (type) {
      expect(type[1], line).toBe(current);
      families.get(type[1]!)!.type = type[2]!;
      continue;
    }
    const m = SAMPLE.exec(line);
    expect(m, `malformed line: ${JSON.stringify(line)}`).not.toBeNull();
    const [, name, labelText, value] = m!;
    const family = families.get(current!)!;
    const allowed = family.type === 'histogram' ? ['_bucket', '_sum', '_count'] : family.type === 'summary' ? ['', '_sum', '_count'] : [''];
    expect(allowed.map((s) => current + s), line).toContain(name);
    const labels: Record<string, string> = {};
    for (const l of (labelText ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!;
    family.samples.push({ name: name!, labels, value: value === '+Inf' ? Infinity : value === '-Inf' ? -Infinity : Number(value) });
  }
  return families;
}

const value = (families: Map<string, Family>, name: string, labels: Record<string, string> = {}) =>
  [...families.values()].flatMap((f) => f.samples).find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

let host: RunningHost;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tessera-metrics-'));
  host = await startHost({ dataDir, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {}, pluginDirs: [], scenarioDirs: [] });
});
afterAll(async () => {
  await host?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function scrape(): Promise<Map<string, Family>> {
  const res = await fetch(`${host.origin}/metrics`, { headers: { authorization: `Bearer ${host.token}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parsePrometheus(await res.text());
}

describe('GET /metrics', () => {
  it('is described, with the webhook routes, in the OpenAPI document', async () => {
    const doc = (await (await fetch(`${host.origin}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths['/metrics']!)).toEqual(['get']);
    expect(Object.keys(doc.paths['/v1/webhooks']!).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/v1/webhooks/{id}']!).sort()).toEqual(['delete', 'get']);
    expect(doc.paths['/v1/webhooks/{id}/deliveries']).toBeDefined();
    expect(doc.paths['/v1/webhook/test']).toBeDefined();
  });

  it('needs the bearer token', async () => {
    const res = await fetch(`${host.origin}/metrics`);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: { code: 'UNAUTHORIZED', message: expect.any(String) } });
  });

  it('serves well-formed Prometheus text with every standard metric, the quantiles and process basics', async () => {
    const families = await scrape();
    for (const name of Object.values(METRIC_NAMES)) expect(families.has(name), name).toBe(true);
    expect(families.get(METRIC_NAMES.runDuration)!.type).toBe('histogram');
    expect(families.get(`${METRIC_NAMES.runDuration}_quantiles`)!.type).toBe('summary');
    expect(families.get(`${METRIC_NAMES.runDuration}_quantiles`)!.samples.map((s) => s.labels['quantile']).filter(Boolean)).toEqual(['0.5', '0.95', '0.99']);
    for (const name of [METRIC_NAMES.ack, METRIC_NAMES.nack, METRIC_NAMES.ask, METRIC_NAMES.replayBlocked, METRIC_NAMES.permitIssued, METRIC_NAMES.webhookAttempts]) {
      expect(families.get(name)!.type, name).toBe('counter');
      expect(value(families, name), name).toBe(0);
    }
    expect(value(families, 'tessera_process_uptime_seconds')).toBeGreaterThan(0);
    // Background work (voice start-up) may journal between the scrape and this read, never before the scrape.
    expect(value(families, 'tessera_journal_events')).toBeGreaterThan(0);
    expect(value(families, 'tessera_journal_events')).toBeLessThanOrEqual(host.runtime.journal.lastId());
    expect(value(families, 'tessera_database_bytes')).toBeGreaterThan(0);
    expect(value(families, 'tessera_webhook_deliveries', { state: 'pending' })).toBe(0);
  });

  it('moves the webhook counters after a real delivery and observes /v1 request latency by route pattern', async () => {
    const got: string[] = [];
    const receiver = createServer((req, res) => {
      got.push(String(req.headers['idempotency-key']));
      req.resume();
      res.writeHead(204).end();
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`;
      const created = await fetch(`${host.origin}/v1/webhooks`, { method: 'POST', headers: { authorization: `Bearer ${host.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ url }) });
      expect(created.status).toBe(201);
      const id = ((await created.json()) as { webhook: { id: string } }).webhook.id;
      await fetch(`${host.origin}/v1/webhooks/whs_missing`, { headers: { authorization: `Bearer ${host.token}` } });
      host.runtime.webhooks.notify('receipt.created', { cid: cidOf('metrics') });
      const start = Date.now();
      while (host.runtime.webhooks.deliveries(id)[0]?.state !== 'delivered') {
        if (Date.now() - start > 10_000) throw new Error('not delivered');
        await new Promise((r) => setTimeout(r, 10));
      }
      const families = await scrape();
      expect(value(families, METRIC_NAMES.webhookAttempts)).toBe(1);
      expect(value(families, METRIC_NAMES.webhookSuccess)).toBe(1);
      expect(value(families, METRIC_NAMES.webhookFail)).toBe(0);
      expect(value(families, 'tessera_webhook_deliveries', { state: 'delivered' })).toBe(1);
      const http = METRIC_NAMES.httpDuration;
      expect(value(families, `${http}_count`, { method: 'POST', route: '/v1/webhooks', status: '201' })).toBe(1);
      expect(value(families, `${http}_count`, { method: 'GET', route: '/v1/webhooks/:id', status: '404' })).toBe(1);
      // Buckets are cumulative and end at +Inf = count.
      const buckets = families.get(http)!.samples.filter((s) => s.name === `${http}_bucket` && s.labels['route'] === '/v1/webhooks');
      expect(buckets.map((b) => b.value)).toEqual([...buckets.map((b) => b.value)].sort((a, b) => a - b));
      expect(buckets.at(-1)).toMatchObject({ labels: { le: '+Inf' }, value: 1 });
      // /metrics itself and /api routes are not /v1 routes.
      expect(families.get(http)!.samples.some((s) => s.labels['route'] === '/metrics')).toBe(false);
    } finally {
      await new Promise<void>((r) => receiver.close(() => r()));
    }
  });
});
