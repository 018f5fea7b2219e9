/**
 * Personal data in memory (issue 18 point 4, seed 001 §17): a scenario declaring `pii: [traveller.*]` stores a
 * planted value with memory.set, reads it back and uses it in io.say, bus.publish, a log step and a step output;
 * then every output of the run is searched for the planted value — the log file, every journal row, every other
 * table of the SQLite file and its raw bytes (memory's own row excepted, which must hold it), `/metrics` and the
 * status API over real HTTP, an offline bundle of the device, and the receipts sync would upload — while the
 * consumers that need the value (the UI channel, an in-process subscriber) did get it in clear.
 */
import Database from 'better-sqlite3';
import { appendFileSync, existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reveal } from '../../main/common/expr.js';
import { CAPSULE_VERSION, capsuleId } from '../../main/common/receipt.js';
import type { Capsule } from '../../main/common/receipt.js';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { DATABASE_FILE } from '../../main/runtime/index.js';
import { createLogger } from '../../main/runtime/log/index.js';
import { tempDir } from '../helpers/tmp.js';

const PLANTED = 'Zoë-PII-7f3a91';
const SCENARIO = `
id: pii_probe
version: 1
description: Stores a traveller's name and uses it everywhere a value can go.
pii: [traveller.*]
permissions: [tts, "bus.publish:pii.probe.*"]
steps:
  - name: remember
    action: memory.set
    with: { key: traveller.name, value: "${PLANTED}" }
    output: stored
  - name: greet
    action: io.say
    with: { text: "Hello \${memory['traveller.name']}, welcome", channel: ui }
  - name: announce
    action: bus.publish
    with: { topic: pii.probe.greeted, payload: { name: "\${memory['traveller.name']}", note: "for \${memory['traveller.name']}" } }
  - name: note
    action: log
    with: { message: "greeted \${memory['traveller.name']}" }
  - name: copy
    action: memory.set
    with: { key: traveller.copy, value: "\${bag.stored}" }
    output: copied
`;

// A step that fails with the value in its error (a duration parser that quotes what it was given), retried once:
// its retrying/failed events, its step row and the run's error must hold it only as *** (review 18 item 10).
const FAILING = `
id: pii_fail
pii: [traveller.*]
steps:
  - name: nap
    action: wait
    with: { duration: "\${memory['traveller.name']}" }
    retries: { max: 1, initial: 10ms }
`;

const plantedIn = (bytes: Buffer | string) => {
  const b = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  // UTF-8 as written, and as JSON's \\u escape of ë in case some writer escapes non-ASCII.
  return b.includes(Buffer.from(PLANTED)) || b.includes(Buffer.from('Zo\\u00eb-PII-7f3a91'));
};

describe('personal data never leaves memory in clear', () => {
  let host: RunningHost;
  let dataDir: string;
  const logFile = () => join(dataDir, 'test.log');
  const uiGot: unknown[] = [];
  const subscriberGot: unknown[] = [];
  let runId = '';
  let failed: { state: string; error: { message: string } | null } | undefined;
  let retried = 0;
  let outputs: Record<string, string> = {};

  const api = async (path: string) => {
    const res = await fetch(host.origin + path, { headers: { authorization: `Bearer ${host.token}` } });
    expect(res.ok).toBe(true);
    return Buffer.from(await res.arrayBuffer());
  };

  beforeAll(async () => {
    dataDir = tempDir('tessera-pii-', 'file');
    const scenarios = join(dataDir, 'scenarios');
    mkdirSync(scenarios, { recursive: true });
    writeFileSync(join(scenarios, 'pii_probe.yaml'), SCENARIO);
    writeFileSync(join(scenarios, 'pii_fail.yaml'), FAILING);
    const logger = createLogger({ level: 'debug', pretty: false, write: (line) => appendFileSync(logFile(), line + '\n') });
    host = await startHost({ dataDir, host: '127.0.0.1', port: 0, logger, shell: 'headless', env: { TESSERA_DEVELOPER: '1' }, pluginDirs: [], scenarioDirs: [scenarios] }); // an unsigned test scenario
    const rt = host.runtime;
    rt.io.attachUi({ send: (m) => uiGot.push(m) });
    rt.bus.subscribe('pii.probe.greeted', (e) => void subscriberGot.push(reveal(e.payload)), { name: 'pii-test' });
    const delivered = new Promise<void>((resolve) => rt.bus.subscribe('io.delivered', () => resolve(), { name: 'pii-test-delivered' }));

    runId = rt.scenarios.run('pii_probe', {});
    expect((await rt.scenarios.wait(runId)).state).toBe('completed');
    await delivered;
    failed = await rt.scenarios.wait(rt.scenarios.run('pii_fail', {}));
    retried = rt.journal.query({ topic: 'scenario.step.retrying' }).events.length;

    // A capsule of the device's own, as the product pipeline writes; its bundle and the log sync uploads.
    const capsule = { v: CAPSULE_VERSION, product: 'pii-probe', act: 'test', tenant: 'device', aud: 'x', src: 'test', view: { n: 1 } } as Capsule;
    const cid = capsuleId(capsule);
    rt.receipts.transaction(() => {
      rt.receipts.createCapsule(cid, capsule, 'ACK', 'decided', Date.now());
      rt.receipts.appendReceipts(cid, [{ kind: 'INTENT', subject: 's', body: {} }, { kind: 'RESULT', subject: 's', body: { verdict: 'ACK' } }], Date.now());
    });

    outputs = {
      metrics: (await api('/metrics')).toString('utf8'),
      status: (await api(`/api/scenario/status?run_id=${runId}`)).toString('utf8'),
      runs: (await api('/api/scenario/runs?scenario_id=pii_probe')).toString('utf8'),
      bundle: (await api(`/v1/r/${cid}/bundle`)).toString('latin1'),
    };
    await host.close();
  }, 60_000);
  afterAll(async () => host?.close());

  it('hands the clear value to the consumers that need it and records it only as *** elsewhere', () => {
    expect(JSON.stringify(uiGot)).toContain(`Hello ${PLANTED}, welcome`);
    expect(subscriberGot).toEqual([{ name: PLANTED, note: `for ${PLANTED}` }]);
    const status = JSON.parse(outputs['status']!) as { bag: Record<string, unknown>; steps: Array<{ name: string; input: unknown; output: unknown }> };
    expect(status.bag).toEqual({ stored: '***', copied: '***' });
    expect(status.steps.find((s) => s.name === 'remember')).toMatchObject({ input: { key: 'traveller.name', value: '***' }, output: '***' });
    expect(status.steps.find((s) => s.name === 'greet')?.input).toMatchObject({ text: 'Hello ***, welcome' });
  });

  it('journals and stores a step error that echoed the value with *** in its place', () => {
    expect(failed?.state).toBe('failed');
    expect(failed?.error?.message).toContain('"***" is not a duration');
    expect(retried).toBe(1);
  });

  it('finds the planted value in no log line, journal row, metric, API answer or bundle', () => {
    const log = readFileSync(logFile(), 'utf8');
    expect(log).toMatch(/"msg":"scenario log","module":"[a-z]+","run_id":"[^"]+","message":"\*\*\*"/);
    expect(plantedIn(log)).toBe(false);
    for (const [name, text] of Object.entries(outputs)) expect(plantedIn(text), name).toBe(false);
  });

  it('keeps it in the database only in the memory table, and never in the journal or what sync uploads', () => {
    const dbFile = join(dataDir, DATABASE_FILE);
    const db = new Database(dbFile, { readonly: true });
    try {
      const memory = db.prepare<[], { key: string; value: string }>('SELECT key, value FROM memory ORDER BY key').all();
      expect(memory).toEqual([{ key: 'traveller.copy', value: JSON.stringify(PLANTED) }, { key: 'traveller.name', value: JSON.stringify(PLANTED) }]);
      const changes = db.prepare<[], { payload: string }>("SELECT payload FROM events WHERE topic = 'memory.changed'").all().map((r) => JSON.parse(r.payload) as { digest: { new: string } });
      // The operator can still tell both keys hold the same value: equal keyed digests.
      expect(changes.map((c) => c.digest.new)).toEqual([changes[0]!.digest.new, changes[0]!.digest.new]);
      const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").all().map((t) => t.name);
      expect(tables).toEqual(expect.arrayContaining(['events', 'memory', 'scenario_steps', 'scenario_runs', 'io_messages']));
      const hits: string[] = [];
      for (const table of tables) {
        if (table === 'memory') continue;
        for (const row of db.prepare(`SELECT * FROM "${table}"`).all() as Array<Record<string, unknown>>) {
          for (const [column, value] of Object.entries(row)) {
            if (value !== null && (typeof value === 'string' || Buffer.isBuffer(value)) && plantedIn(value)) hits.push(`${table}.${column}`);
          }
        }
      }
      expect(hits).toEqual([]);
    } finally {
      db.close();
    }
    // Raw bytes: once memory's rows are gone and the file is rewritten (VACUUM drops free pages), nothing holds it.
    const copy = join(dataDir, 'copy.db');
    const src = new Database(dbFile, { readonly: true });
    src.exec(`VACUUM INTO '${copy}'`);
    src.close();
    const scrub = new Database(copy);
    scrub.exec('DELETE FROM memory; VACUUM');
    scrub.close();
    expect(plantedIn(readFileSync(copy))).toBe(false);
    expect(existsSync(`${copy}-wal`) ? plantedIn(readFileSync(`${copy}-wal`)) : false).toBe(false);
    // Every other file the runtime wrote (keys, tokens, caches), the database excepted.
    const others = readdirSync(dataDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && !e.name.startsWith(DATABASE_FILE) && e.name !== 'copy.db' && !e.name.endsWith('.yaml'));
    expect(others.filter((e) => plantedIn(readFileSync(join(e.parentPath, e.name)))).map((e) => e.name)).toEqual([]);
  });
});
