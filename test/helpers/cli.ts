import { execFile, spawn, spawnSync } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/tessera.js', import.meta.url));
const BUILT = fileURLToPath(new URL('../../out/main/cli.js', import.meta.url));

export function requireBuild(): void {
  if (!existsSync(BUILT)) throw new Error('These tests drive the built CLI: run `npm run build` first (npm test does).');
}

/** Environment for child runtimes: no inherited Tessera settings, never the user's data folder. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['TESSERA_TOKEN', 'TESSERA_DATA', 'DISPLAY', 'WAYLAND_DISPLAY']) delete env[name];
  return { ...env, ...extra };
}

export function runTessera(args: string[], env = cleanEnv()) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env, timeout: 120_000 }); // a ceiling for a loaded machine
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** {@link runTessera} without blocking: independent commands can run side by side. */
export function runTesseraAsync(args: string[], env = cleanEnv()): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], { encoding: 'utf8', env, timeout: 120_000 }, (error, stdout, stderr) => {
      // A non-zero exit is an answer (its code is the point); only a failure to run at all is an error.
      if (error && typeof error.code !== 'number') reject(error);
      else resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

export interface StartedTessera {
  child: ChildProcessWithoutNullStreams;
  origin: string;
  uiUrl: string;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code once the process ends. */
  exited: Promise<number | null>;
}

/** `tessera start --headless --port 0 --data DIR`; resolves once it prints the URL it serves. */
export function startTessera(dataDir: string, extraArgs: string[] = [], env = cleanEnv(), options: { prefix?: readonly string[] } = {}): Promise<StartedTessera> {
  // `prefix` runs it through another program first (e.g. nsenter into a network namespace: helpers/netns.ts).
  const [command, ...args] = [...(options.prefix ?? []), process.execPath, BIN, 'start', '--headless', '--port', '0', '--data', dataDir, ...extraArgs];
  const child = spawn(command!, args, { env });
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    // A ceiling for a loaded machine (it starts in about a second when idle), not an expected duration.
    const timer = setTimeout(() => reject(new Error(`tessera did not start in time.\nstdout: ${out}\nstderr: ${err}`)), 60_000);
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /Open:\s+(http:\/\/[^\s/]+)(\/#token=\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, origin: m[1]!, uiUrl: m[1]! + m[2]!, stdout: () => out, stderr: () => err, exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`tessera exited early with ${code}.\nstdout: ${out}\nstderr: ${err}`));
    });
  });
}
