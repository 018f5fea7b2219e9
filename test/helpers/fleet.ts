/**
 * A fleet on one machine (issue 16 "Real parts in tests"): the cloud as its own process (`tessera cloud start`, on
 * PGlite or a real PostgreSQL), device runtimes as their own processes (`tessera start --headless`), each device
 * reaching the cloud through its own {@link LinkProxy} so a test can cut and heal one link at a time.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, cleanEnv } from './cli.js';

export interface CloudProcess {
  child: ChildProcessWithoutNullStreams;
  url: string;
  port: number;
  rootToken: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** `tessera cloud start --port 0 --data DIR [--database URL]`; resolves once it prints its URL. */
export function startCloudProcess(dataDir: string, options: { database?: string; env?: Record<string, string> } = {}): Promise<CloudProcess> {
  const args = [BIN, 'cloud', 'start', '--port', '0', '--data', dataDir, ...(options.database ? ['--database', options.database] : [])];
  const env = cleanEnv(options.env ?? {});
  delete env['DATABASE_URL'];
  const child = spawn(process.execPath, args, { env });
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    // A ceiling for a loaded machine (PGlite's first start initialises its cluster), not an expected duration.
    const timer = setTimeout(() => reject(new Error(`the cloud did not start in time.\nstdout: ${out}\nstderr: ${err}`)), 90_000);
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /URL:\s+(http:\/\/127\.0\.0\.1:(\d+))/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]!, port: Number(m[2]), rootToken: readFileSync(join(dataDir, 'root-token'), 'utf8').trim(), stdout: () => out, stderr: () => err, exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the cloud exited early with ${code}.\nstdout: ${out}\nstderr: ${err}`));
    });
  });
}

/** JSON over HTTP with a bearer token; answers `{status, body}` and never throws for an HTTP error status. */
export async function call<T = Record<string, unknown>>(url: string, options: { method?: string; token?: string; body?: unknown; timeoutMs?: number } = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(url, {
    method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
    headers: { ...(options.token ? { authorization: `Bearer ${options.token}` } : {}), ...(options.body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    signal: AbortSignal.timeout(options.timeoutMs ?? 60_000),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: body as T };
}
