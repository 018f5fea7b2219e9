/**
 * kill -9 mid-journey (issue 15 "Bad input and faults"): a child runtime walks journeys of the shipped sample — stops
 * done by touch and by staff redemptions — and is killed at random moments. Reopened, every journey resumes at the
 * node it had reached: each finished node has exactly one `journey.node.*` event and the current node was entered
 * once. A node whose entitlement was redeemed while the journey could not hear of it is completed at the next start.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { BUILTIN_CATALOGUE_DIR, BUILTIN_JOURNEYS_DIR, BUILTIN_PLUGINS_DIR, BUILTIN_TRUST_DIR } from '../../main/host/paths.js';
import { tempDir } from '../helpers/tmp.js';

const worker = fileURLToPath(new URL('../fixtures/journey-walker-worker.ts', import.meta.url));

function open(dataDir: string): Promise<Runtime> {
  return createRuntime({
    dataDir,
    shell: 'headless',
    logger: createMemoryLogger(),
    builtinTrustDir: BUILTIN_TRUST_DIR,
    pluginDirs: [BUILTIN_PLUGINS_DIR, join(dataDir, 'plugins')],
    catalogueDirs: [BUILTIN_CATALOGUE_DIR],
    journeyDirs: [BUILTIN_JOURNEYS_DIR],
    voice: false,
  });
}

/** Runs the walker until it has moved `atLeast` times plus a random few milliseconds, then SIGKILLs it. */
function walkAndKill(dataDir: string, atLeast: number): Promise<void> {
  return new Promise((resolve, reject) => {
    // node itself, not the tsx wrapper (whose child would outlive a SIGKILL of the wrapper).
    const child = spawn(process.execPath, ['--import', 'tsx', worker, dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let killing = false;
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!killing && (out.match(/^moved /gm) ?? []).length >= atLeast) {
        killing = true;
        setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 30));
      }
    });
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`the walker exited with ${code}: ${err}`))));
  });
}

/** Every `journey.*` event in the journal, page by page. */
function journeyEvents(runtime: Runtime) {
  const all = [];
  for (let after: number | undefined; ; ) {
    const page = runtime.journal.query({ topic: 'journey.**', limit: 1000, ...(after !== undefined ? { after } : {}) }).events;
    all.push(...page);
    if (page.length < 1000) return all;
    after = page[page.length - 1]!.id;
  }
}

/** Buys the pass for `user`; a preflight the busy sandbox could not run is tried again with a new session. */
async function buyPass(runtime: Runtime, user: string) {
  for (let attempt = 0; ; attempt++) {
    const session = await runtime.sessions.create({ product: 'city.museum-pass-48h', user_id: `${user}-${attempt}`, wallet_id: 'w0', market: 'UA', city: 'lviv' });
    if (session.state === 'preflight_ok') return runtime.sessions.pay(session.product_runtime_session_id);
    if (attempt >= 5) throw new Error(`no preflight passed: ${JSON.stringify(session.preflight)}`);
  }
}

/** Every journey's rows agree with its events: the invariants a crash must not break. */
function checkConsistent(runtime: Runtime): number {
  const journeys = runtime.journeys.list({ limit: 200 });
  for (const j of journeys) {
    const events = journeyEvents(runtime).filter((e) => (e.payload as { journey_instance_id?: string }).journey_instance_id === j.journey_instance_id);
    const count = (topic: string, node: string) => events.filter((e) => e.topic === topic && (e.payload as { node?: string }).node === node).length;
    expect(events.filter((e) => e.topic === 'journey.started')).toHaveLength(1);
    for (const n of j.nodes) {
      if (n.state === 'completed') expect(count('journey.node.completed', n.id), `${j.journey_instance_id} ${n.id}`).toBe(1);
      if (n.state === 'pending') expect(count('journey.node.completed', n.id) + count('journey.node.entered', n.id)).toBe(0);
      if (n.state !== 'pending') expect(count('journey.node.entered', n.id), `${j.journey_instance_id} ${n.id} entered`).toBe(1);
    }
    if (j.state === 'started') expect(j.nodes.find((n) => n.id === j.current)?.state).toBe('entered');
    expect(events.filter((e) => e.topic === 'journey.completed')).toHaveLength(j.state === 'completed' ? 1 : 0);
  }
  return journeys.length;
}

async function prepare(): Promise<string> {
  const dataDir = tempDir('tessera-journey-crash-');
  const runtime = await open(dataDir);
  for (let w = 0; w < 4; w++) await runtime.ledger.topUp({ wallet_id: `w${w}`, amount: 100_000_000, currency: 'UAH', idempotency_key: `journey-crash-topup-${w}` });
  await runtime.close();
  return dataDir;
}

describe('a journey cut by kill -9', () => {
  it('resumes at the node it had reached, its rows and events agreeing, over several kills', async () => {
    const dataDir = await prepare();
    for (let round = 0; round < 3; round++) await walkAndKill(dataDir, 3 + 4 * round);
    const runtime = await open(dataDir);
    try {
      expect(checkConsistent(runtime)).toBeGreaterThanOrEqual(1);
      // The journey in progress goes on from where it was.
      const open_ = runtime.journeys.list({ state: 'started', limit: 10 })[0];
      if (open_) {
        const current = open_.current!;
        const after = runtime.journeys.complete(open_.journey_instance_id, current);
        expect(after.nodes.find((n) => n.id === current)!.state).toBe('completed');
      }
    } finally {
      await runtime.close();
    }
  }, 300_000);

  it('completes, at the next start, a node whose redemption the journey never heard of (the process died between the two)', async () => {
    const dataDir = await prepare();
    let journeyId: string;
    let venue: string;
    {
      const runtime = await open(dataDir);
      const paid = await buyPass(runtime, 'ana');
      let j = runtime.journeys.start({ session: paid.product_runtime_session_id });
      journeyId = j.journey_instance_id;
      while (!j.nodes.find((n) => n.id === j.current)!.needs) j = runtime.journeys.complete(journeyId, j.current!);
      venue = j.nodes.find((n) => n.id === j.current)!.needs!.venue;
      // The journeys module stops listening, as a process killed after the redemption's commit and before its event
      // reached the module: the redemption is on disk, the journey does not know.
      runtime.journeys.dispose();
      expect(runtime.entitlements.redeem({ code: paid.entitlements[0]!.code, venue, screen: 'gate' }).verdict).toBe('REDEEMED');
      expect(runtime.journeys.get(journeyId).nodes.find((n) => n.needs?.venue === venue)!.state).toBe('entered');
      await runtime.close();
    }
    const runtime = await open(dataDir);
    try {
      expect(runtime.journeys.get(journeyId).nodes.find((n) => n.needs?.venue === venue)).toMatchObject({ state: 'completed', by: 'redemption' });
      checkConsistent(runtime);
    } finally {
      await runtime.close();
    }
  }, 300_000);
});
