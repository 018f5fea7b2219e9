/**
 * Journey documents in a running Tessera and through the built CLI (issue 15 point 1): a real headless host on a
 * real SQLite file loads the shipped (signed) Lviv day beside the museum pass that names it, adds a good file from
 * `<data>/journeys`, journals the bad ones there as `catalogue.load_failed` and starts anyway; after a restart the
 * documents come back from the database. `tessera journey validate` prints each problem's path; `journey sign`
 * writes what the catalogue accepts.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cidOf } from '../../main/common/cid.js';
import type { JourneyDoc } from '../../main/common/journeys.js';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { signJourneyDoc } from '../../main/runtime/catalogue/index.js';
import { canonicalBytes } from '../../main/common/canonical.js';
import { JOURNEY_PAYLOAD_TYPE } from '../../main/common/journeys.js';
import { generateKeyPair, readPrivateKey, signEnvelope } from '../../main/runtime/keys/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { DATABASE_FILE } from '../../main/runtime/index.js';
import { BIN, cleanEnv, requireBuild } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const DEV_KEY = join(ROOT, 'plugins', 'dev-key');
const SRC = join(ROOT, 'resources', 'journeys', 'src', 'lviv.old-town-day.json');
const sample = () => JSON.parse(readFileSync(SRC, 'utf8')) as JourneyDoc;
const node = (doc: JourneyDoc, id: string) => doc.nodes.find((n) => n.id === id)!;

let host: RunningHost;
let dataDir: string;
const start = () => startHost({ dataDir, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {} });

beforeAll(async () => {
  requireBuild();
  dataDir = tempDir('tessera-journeys-', 'file');
  const folder = join(dataDir, 'journeys');
  mkdirSync(folder, { recursive: true });
  const dev = readPrivateKey(DEV_KEY);
  writeFileSync(join(folder, 'a-broken.json'), '{ not json');
  writeFileSync(join(folder, 'b-untrusted.json'), JSON.stringify(signJourneyDoc({ ...sample(), version: '1.9.0' }, generateKeyPair())));
  const cyclic = { ...sample(), version: '1.8.0' };
  node(cyclic, 'opera').next = ['rynok'];
  writeFileSync(join(folder, 'c-cycle.json'), JSON.stringify(signEnvelope(JOURNEY_PAYLOAD_TYPE, canonicalBytes(cyclic), [dev])));
  writeFileSync(join(folder, 'd-newer.json'), JSON.stringify(signJourneyDoc({ ...sample(), version: '1.2.0' }, dev)));
  host = await start();
}, 60_000);
afterAll(async () => {
  await host?.close();
});

const tessera = (args: string[]) =>
  new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: cleanEnv(), timeout: 60_000 }, (err, stdout, stderr) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
  });

describe('journey documents in a running Tessera', { timeout: 60_000 }, () => {
  it('loads the shipped Lviv day and the good file of <data>/journeys; the bad files are journaled and skipped, never fatal', () => {
    const { catalogue, journal } = host.runtime;
    expect(host.runtime.store.path).toBe(join(dataDir, DATABASE_FILE));
    expect(existsSync(host.runtime.store.path)).toBe(true);
    const shipped = catalogue.resolveJourney('lviv.old-town-day@1.0.0');
    expect(shipped).toMatchObject({ cid: cidOf(sample()), source: join(ROOT, 'resources', 'journeys', 'lviv.old-town-day@1.0.0.json'), publisher: { name: expect.any(String) } });
    expect(catalogue.journeys().map((j) => j.ref)).toEqual(['lviv.old-town-day@1.2.0', 'lviv.old-town-day@1.0.0']);
    // The pass on sale names its journey; the range picks the newest matching document.
    const pass = catalogue.resolve('city.museum-pass-48h');
    expect(pass).toMatchObject({ version: '1.1.0', journey: 'lviv.old-town-day@^1' });
    expect(catalogue.resolveJourney(pass.journey!).version).toBe('1.2.0');
    const failures = catalogue.errors().filter((e) => e.source.startsWith(join(dataDir, 'journeys')));
    expect(failures.map((e) => [e.source.split('/').pop(), e.code])).toEqual([
      ['a-broken.json', 'JOURNEY_DOC_INVALID'],
      ['b-untrusted.json', 'KEY_UNKNOWN'],
      ['c-cycle.json', 'JOURNEY_DOC_INVALID'],
    ]);
    expect(failures[2]!.message).toContain('/nodes/8/next/0: The order has a cycle: rynok → history → pharm → lunch → lychakiv → art → free → opera → rynok');
    const journaled = journal.query({ topic: 'catalogue.load_failed' }).events.map((e) => (e.payload as { source: string; error: { code: string } }));
    expect(journaled.filter((e) => e.source.startsWith(join(dataDir, 'journeys'))).map((e) => e.error.code)).toEqual(['JOURNEY_DOC_INVALID', 'KEY_UNKNOWN', 'JOURNEY_DOC_INVALID']);
    expect(journal.query({ topic: 'catalogue.journey.added' }).events.map((e) => (e.payload as { version: string }).version)).toEqual(['1.0.0', '1.2.0']);
  });

  it('GET /api/catalogue/:ref shows which journey a product comes with', async () => {
    const res = await fetch(`${host.origin}/api/catalogue/city.museum-pass-48h`, { headers: { authorization: `Bearer ${host.credentials.roleToken('traveller')}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ref: 'city.museum-pass-48h@1.1.0', journey: 'lviv.old-town-day@^1' });
  });

  it('after a restart the documents come back from the database, without being added again', async () => {
    await host.close();
    host = await start();
    const { catalogue, journal } = host.runtime;
    expect(catalogue.journeys().map((j) => j.ref)).toEqual(['lviv.old-town-day@1.2.0', 'lviv.old-town-day@1.0.0']);
    expect(catalogue.resolveJourney('lviv.old-town-day').cid).toBe(cidOf({ ...sample(), version: '1.2.0' }));
    expect(journal.query({ topic: 'catalogue.journey.added' }).events).toHaveLength(2);
  });
});

describe('tessera journey validate | sign', { timeout: 60_000 }, () => {
  it('validate prints each problem of a broken document with its path, and exits 1', async () => {
    const dir = tempDir();
    const doc = sample();
    node(doc, 'pharm').next = ['lunch', 'history'];
    node(doc, 'art').place = 'lviv.zoo';
    node(doc, 'history').needs!.venue = 'lviv.opera';
    writeFileSync(join(dir, 'broken.json'), JSON.stringify(doc));
    const r = await tessera(['journey', 'validate', join(dir, 'broken.json'), '--catalogue', join(ROOT, 'resources', 'catalogue')]);
    expect(r.status).toBe(1);
    expect(r.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/^\/nodes\/1\/needs\/venue: "lviv\.opera" is not a venue of city\.museum-pass-48h/),
      expect.stringMatching(/^\/nodes\/5\/place: Node "art" is at "lviv\.zoo", which is not one of the places/),
      '/nodes/2/next/1: The order has a cycle: history → pharm → history. `next` must not lead back to a node (the journey is a DAG from start).',
    ]);
    expect(r.stderr).toContain('3 problems (JOURNEY_DOC_INVALID)');
    // Without --catalogue the needs are not checked.
    expect((await tessera(['journey', 'validate', join(dir, 'broken.json')])).stdout).not.toContain('needs/venue');
    writeFileSync(join(dir, 'garbage.json'), '[1,');
    expect(await tessera(['journey', 'validate', join(dir, 'garbage.json')])).toMatchObject({ status: 1, stderr: expect.stringContaining('error JOURNEY_DOC_INVALID') });
  });

  it('sign writes a document the running catalogue accepts, and validate accepts the signed file', async () => {
    const dir = tempDir();
    const doc = { ...sample(), version: '1.3.0' };
    writeFileSync(join(dir, 'day.json'), JSON.stringify(doc));
    const signed = await tessera(['journey', 'sign', join(dir, 'day.json'), '--key', DEV_KEY, '--out', join(dir, 'day.signed.json')]);
    expect(signed.status, signed.stderr).toBe(0);
    expect(signed.stdout).toContain(`cid:    ${cidOf(doc)}`);
    const valid = await tessera(['journey', 'validate', join(dir, 'day.signed.json'), '--catalogue', join(ROOT, 'resources', 'catalogue')]);
    expect({ status: valid.status, stdout: valid.stdout }).toEqual({ status: 0, stdout: expect.stringContaining('lviv.old-town-day@1.3.0 is valid: 10 places, 9 nodes, 11 static routes') });
    const { added, journey } = host.runtime.catalogue.addJourney(JSON.parse(readFileSync(join(dir, 'day.signed.json'), 'utf8')));
    expect({ added, ref: journey.ref, cid: journey.cid }).toEqual({ added: true, ref: 'lviv.old-town-day@1.3.0', cid: cidOf(doc) });
    const broken = { ...doc, start: 'nowhere' };
    writeFileSync(join(dir, 'broken.json'), JSON.stringify(broken));
    const refused = await tessera(['journey', 'sign', join(dir, 'broken.json'), '--key', DEV_KEY]);
    expect({ status: refused.status, stderr: refused.stderr }).toEqual({ status: 1, stderr: expect.stringContaining('/start: No node has the id "nowhere"') });
  });
});
