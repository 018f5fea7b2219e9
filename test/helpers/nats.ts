/**
 * A real, throwaway `nats-server` with JetStream for tests (issue 18): Debian's `nats-server` package (installed by
 * `npm run setup`) started on a free 127.0.0.1 port with its store in a temporary folder. `stop()` and `start()`
 * again keep the port and the store, so a test can take the server away mid-burst and bring it back with its
 * streams. `kill()` is SIGKILL (no clean shutdown). Every server still running when the test file ends is stopped
 * and its folder removed.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEveryFile } from './per-file.js';
import { freePort } from './ports.js';

export interface RunningNats {
  /** `nats://127.0.0.1:PORT` */
  url: string;
  port: number;
  /** The JetStream store folder (kept across stop/start). */
  storeDir: string;
  /** Whether the server process is up now. */
  readonly running: boolean;
  /** Stops the server (SIGTERM, waits for it to exit). The store and the port are kept for start(). */
  stop(): Promise<void>;
  /** SIGKILL: no clean shutdown. */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same store; resolves when it accepts connections. */
  start(): Promise<void>;
  /** Stops it and removes its folder. Safe to call twice. */
  dispose(): Promise<void>;
}

/** Whether `nats-server` is on PATH. */
export function natsInstalled(): boolean {
  return spawnSync('nats-server', ['--version'], { encoding: 'utf8' }).status === 0;
}

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

const servers = new Set<RunningNats>();
afterEveryFile(async () => {
  await Promise.all([...servers].map((s) => s.dispose()));
});

/** Starts a throwaway JetStream server. @throws Error with the server's output when it does not come up in 20 s. */
export async function startNats(): Promise<RunningNats> {
  if (!natsInstalled()) throw new Error('nats-server is not installed: run `npm run setup` or apt-get install nats-server.');
  const dir = mkdtempSync(join(tmpdir(), 'tessera-nats-'));
  const storeDir = join(dir, 'js');
  const port = await freePort();
  let child: ChildProcess | undefined;
  let output = '';
  const exited = () => child === undefined || child.exitCode !== null || child.signalCode !== null;

  const start = async () => {
    if (!exited()) return;
    output = '';
    // Cluster-free single server; -js with its own store folder; no monitoring port (nothing else to collide with).
    const proc = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir, '-n', `tessera-test-${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    proc.stdout?.on('data', (b: Buffer) => (output += b.toString()));
    proc.stderr?.on('data', (b: Buffer) => (output += b.toString()));
    const deadline = Date.now() + 20_000;
    // "Server is ready" comes after JetStream has recovered its streams from the store.
    while (!/Server is ready/.test(output) || !(await accepts(port))) {
      if (exited()) throw new Error(`nats-server exited: ${output}`);
      if (Date.now() > deadline) throw new Error(`nats-server did not come up within 20 s: ${output}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const halt = async (signal: NodeJS.Signals) => {
    const proc = child;
    if (!proc || exited()) return;
    const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    await gone;
  };

  await start();
  const server: RunningNats = {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    get running() {
      return !exited();
    },
    stop: () => halt('SIGTERM'),
    kill: () => halt('SIGKILL'),
    start,
    async dispose() {
      servers.delete(server);
      await halt('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  servers.add(server);
  return server;
}
