/**
 * The floor of `POST /v1/run` on this machine: a server that does only the work no receipt pipeline can skip,
 * with the same real parts as the runtime and nothing else. receipts.bench.ts runs it as a second baseline beside
 * `GET /healthz`, so the benchmark shows how much of the pipeline's cost is its own and how much is the parts'.
 *
 * Per request, as lean as it can be written:
 * - Fastify with a bearer check and its JSON body parser (the runtime's HTTP stack);
 * - the shipped intake and two policy plugins of the API Receipt Gateway, called in the sandbox host process
 *   (sandbox/client.ts: the isolates live in a child process, as in the runtime), intake first, then the policies
 *   side by side;
 * - five canonical JSON payloads (permit and four receipts), each naming the previous one's BLAKE3 cid, each signed
 *   as a DSSE envelope with Ed25519 on the runtime's signer worker (keys createWorkerSigner);
 * - one durable write per request, group-committed with the requests ready in the same turn: the five envelopes into a
 *   table with a unique index on the receipt id (a card is fetched by cid), and one journal row. The database is
 *   opened by the runtime's store (WAL, synchronous NORMAL, background checkpoints).
 *
 * What it leaves out, and the pipeline does not: input validation and the product's input templates, replay and
 * idempotency checks, the capsule and permit rows, the device log's Merkle tree, the journal's bus, metrics, card
 * and bundle links. Run as a script: prints `READY <origin> <token>` on stdout, stops on SIGTERM.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { canonicalBytes } from '../../main/common/canonical.js';
import { cidOfBytes } from '../../main/common/cid.js';
import { installFastDigests } from '../../main/runtime/digests.js';
import { createWorkerSigner, generateKeyPair, signEnvelopeWith } from '../../main/runtime/keys/index.js';
import { createLogger } from '../../main/runtime/log/index.js';
import { openStore } from '../../main/runtime/store/index.js';
import { createSandboxHost } from '../../sandbox/client.js';
import type { IsolateLimits } from '../../sandbox/protocol.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dataDir = process.argv[2];
if (!dataDir) throw new Error('usage: receipts-floor.ts DATA_DIR');

await installFastDigests();
const logger = createLogger({ level: 'error' });
const LIMITS: IsolateLimits = { memoryMb: 32, timeoutMs: 200, deadlineMs: 5000, maxOutputChars: 1 << 20 };
const sandbox = createSandboxHost({ logger });
for (const name of ['intake-event', 'policy-existence', 'policy-authorization']) {
  const dir = join(ROOT, 'out/plugins', name);
  const manifest = JSON.parse(readFileSync(join(dir, 'plugin.json'), 'utf8')) as { kind: 'intake' | 'policy' };
  await sandbox.load({ key: name, kind: manifest.kind, code: readFileSync(join(dir, 'plugin.js'), 'utf8'), limits: LIMITS });
}

const key = generateKeyPair();
const signer = createWorkerSigner(key);
const store = openStore({ path: join(dataDir, 'floor.db'), logger, backgroundCheckpoint: true });
store.db.exec(`
  CREATE TABLE receipts (row INTEGER PRIMARY KEY, id TEXT NOT NULL, envelope TEXT NOT NULL) STRICT;
  CREATE UNIQUE INDEX receipts_id ON receipts (id);
  CREATE TABLE journal (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, topic TEXT NOT NULL, data TEXT NOT NULL) STRICT;`);
const insertReceipt = store.db.prepare('INSERT INTO receipts (id, envelope) VALUES (?, ?)');
const insertEvent = store.db.prepare('INSERT INTO journal (ts, topic, data) VALUES (?, ?, ?)');

/** Group commit: the writes asked for in one turn of the event loop share one transaction. */
let queue: Array<() => void> = [];
function flush(): void {
  const batch = queue;
  queue = [];
  store.db.exec('BEGIN');
  for (const write of batch) write();
  store.db.exec('COMMIT');
}
function write(fn: () => void): Promise<void> {
  return new Promise((resolve) => {
    if (queue.push(() => (fn(), resolve())) === 1) setImmediate(flush);
  });
}

const PAYLOAD_TYPE = 'application/vnd.tessera.receipt+json';
const token = randomBytes(32).toString('hex');
const app = Fastify({ bodyLimit: 64 * 1024 });
app.addHook('onRequest', async (req, reply) => {
  if (req.headers.authorization !== `Bearer ${token}`) return reply.code(401).send({ code: 'UNAUTHORIZED' });
});
app.post('/v1/run', async (req) => {
  const view = req.body as { meta?: { principal?: unknown } };
  const now = Date.now();
  const ctx = JSON.stringify({ now: new Date(now).toISOString(), trace_id: randomBytes(16).toString('hex'), plugin: { name: 'floor', version: '1.0.0' } });
  const intake = await sandbox.call('intake-event', JSON.stringify(view), ctx, now);
  const slots = (JSON.parse(intake.value) as { slots?: { scopes?: unknown } }).slots;
  const verdicts = await Promise.all([
    sandbox.call('policy-existence', JSON.stringify({ required: ['intent.kind', 'intent.name', 'ctx.method', 'ctx.path', 'meta.principal.id'], subject: view }), ctx, now),
    sandbox.call('policy-authorization', JSON.stringify({ tenant: 'default', audience: 'gateway', scopes: slots?.scopes ?? [], principal: view.meta?.principal }), ctx, now),
  ]);
  const payloads: Array<[string, Uint8Array]> = [];
  let prev: string | null = null;
  for (const kind of ['PERMIT', 'INTENT', 'DELIVERY', 'EXECUTION', 'RESULT']) {
    const payload = canonicalBytes({ kind, prev, at: now, view, verdicts: verdicts.map((v) => JSON.parse(v.value) as unknown) });
    prev = cidOfBytes(payload);
    payloads.push([prev, payload]);
  }
  // The five signatures go to the signer worker as one batch.
  const envelopes = await Promise.all(payloads.map(async ([id, payload]) => [id, JSON.stringify(await signEnvelopeWith(PAYLOAD_TYPE, payload, key, signer))] as const));
  await write(() => {
    for (const [id, envelope] of envelopes) insertReceipt.run(id, envelope);
    insertEvent.run(now, 'receipt.run', JSON.stringify({ cid: prev }));
  });
  return { cid: prev, verdict: 'ACK', card_url: `/v1/r/${prev}`, bundle_url: `/v1/r/${prev}/bundle` };
});
app.get('/healthz', async () => ({ ok: true }));

const origin = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`READY ${origin} ${token}\n`);
process.on('SIGTERM', () => {
  void app.close().then(async () => {
    signer.close();
    await sandbox.dispose();
    store.close();
    process.exit(0);
  });
});
