/**
 * A network cut for real (issue 14 "with the network cut"): a Linux network namespace with nothing but loopback.
 * Tessera and Chromium started inside it reach each other on 127.0.0.1 and nothing else — no DNS, no route out.
 * Playwright drives the browser over a pipe, so the test process outside still controls it.
 *
 * Needs `unshare` and `nsenter` (util-linux) and the right to make a network namespace: root, as CI runs, or
 * unprivileged user namespaces (`unshare -rn`).
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './tmp.js';

export interface OfflineNamespace {
  /** The command prefix that runs a program inside: `['nsenter', '-t', pid, '-n', …]`. */
  readonly enter: string[];
  /** An executable that starts Debian's Chromium inside (Playwright's `executablePath`). */
  readonly chromium: string;
  /** Ends the namespace's holder process (the namespace goes with its last process). */
  close(): void;
}

/** Makes the namespace, brings its loopback up, and checks that nothing outside is reachable from it. */
export async function createOfflineNamespace(): Promise<OfflineNamespace> {
  const rootless = process.getuid?.() !== 0;
  const holder: ChildProcess = spawn('unshare', [...(rootless ? ['-r'] : []), '-n', 'sleep', 'infinity'], { stdio: 'ignore' });
  const failed = new Promise<never>((_, reject) => holder.once('exit', (code) => reject(new Error(`unshare could not make a network namespace (exit ${code}): run as root or allow user namespaces`))));
  // Only a failure while we wait for the namespace matters; its end at close() is expected.
  failed.catch(() => undefined);
  // The holder is inside once its namespace differs from ours.
  const ours = spawnSync('readlink', ['/proc/self/ns/net'], { encoding: 'utf8' }).stdout.trim();
  for (let i = 0; ; i++) {
    const theirs = spawnSync('readlink', [`/proc/${holder.pid}/ns/net`], { encoding: 'utf8' }).stdout.trim();
    if (theirs !== '' && theirs !== ours) break;
    if (i > 200) throw new Error('the namespace holder did not enter its namespace');
    await Promise.race([new Promise((r) => setTimeout(r, 25)), failed]);
  }
  const enter = ['nsenter', '-t', String(holder.pid), ...(rootless ? ['-U', '--preserve-credentials'] : []), '-n'];
  const up = spawnSync(enter[0]!, [...enter.slice(1), 'ip', 'link', 'set', 'lo', 'up'], { encoding: 'utf8' });
  if (up.status !== 0) {
    holder.kill();
    throw new Error(`cannot bring up loopback in the namespace: ${up.stderr}`);
  }
  const dir = tempDir('tessera-netns-', 'file');
  const chromium = join(dir, 'chromium-offline.sh');
  writeFileSync(chromium, `#!/bin/sh\nexec ${enter.join(' ')} /usr/bin/chromium "$@"\n`);
  chmodSync(chromium, 0o755);
  return {
    enter,
    chromium,
    close: () => void holder.kill(),
  };
}
