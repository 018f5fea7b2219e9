/**
 * A real, throwaway PostgreSQL server for tests (issue 16): `initdb` into a temporary folder and `pg_ctl start` on a
 * free 127.0.0.1 port, with durability off (fsync, synchronous_commit, full_page_writes) because the cluster dies
 * with the test. PostgreSQL refuses to run as root: when we are root, the folder is given to the `postgres` OS user
 * and every server command runs through `runuser -u postgres --`.
 *
 * The binaries come from PATH or from Debian's `/usr/lib/postgresql/<version>/bin` (not on PATH there);
 * `npm run setup` installs the `postgresql` package.
 *
 * {@link cloudDbs} gives the rows for `describe.each` so that one suite runs against PGlite and PostgreSQL: each
 * `open()` is a fresh, migrated database (PGlite in memory, or a new database in the file's one cluster).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import pg from 'pg';
import { openDb } from '../../main/cloud/db.js';
import type { Db } from '../../main/cloud/db.js';
import { afterEveryFile } from './per-file.js';
import { freePort } from './ports.js';

export interface RunningPostgres {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` (trust authentication on loopback). */
  url: string;
  port: number;
  /** Stops the server (immediate mode) and removes its folder. Safe to call twice. */
  stop(): Promise<void>;
}

/** The folder holding initdb and pg_ctl, or undefined when PostgreSQL is not installed. */
export function postgresBinDir(): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) if (dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

/** Starts a throwaway cluster. @throws Error with the server's log when it does not come up. */
export async function startPostgres(): Promise<RunningPostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin): run `npm run setup` or apt-get install postgresql.');
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'tessera-pg-'));
  const data = join(dir, 'data');
  const run = (command: string, args: string[]) => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, command), ...args]] : [join(bin, command), args];
    return spawnSync(file, argv, { encoding: 'utf8', timeout: 120_000, cwd: dir });
  };
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o700);
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  const init = run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  if (init.status !== 0) {
    removeDir();
    throw new Error(`initdb failed (${init.status}): ${init.stderr || init.stdout || String(init.error)}`);
  }
  const log = join(dir, 'server.log');
  // A port picked free can be taken before the server binds it: try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const options = `-p ${port} -h 127.0.0.1 -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100`;
    const start = run('pg_ctl', ['-D', data, '-o', options, '-l', log, '-w', '-t', '60', 'start']);
    if (start.status === 0) {
      let stopped = false;
      return {
        url: `postgres://postgres@127.0.0.1:${port}/postgres`,
        port,
        async stop() {
          if (stopped) return;
          stopped = true;
          run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '60', 'stop']);
          removeDir();
        },
      };
    }
    const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    if (!/could not bind|Address already in use/.test(text) || attempt === 4) {
      run('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
      removeDir();
      throw new Error(`pg_ctl start failed (${start.status}): ${start.stderr}\n${text}`);
    }
  }
  throw new Error('unreachable');
}

let shared: Promise<RunningPostgres> | undefined;
let databases = 0;
afterEveryFile(async () => {
  const running = shared;
  shared = undefined;
  if (running) await (await running).stop();
});

/** A fresh, empty database in the test file's one cluster (started on first use, stopped after the file). */
export async function freshPostgresUrl(): Promise<string> {
  shared ??= startPostgres();
  const server = await shared;
  const name = `t${process.pid}_${++databases}`;
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  return server.url.replace(/\/postgres$/, `/${name}`);
}

export type OpenCloudDb = () => Promise<Db>;

/**
 * Rows for `describe.each(cloudDbs())('%s', (kind, open) => …)`: the same suite on PGlite (in memory) and on a real
 * PostgreSQL server. Each `open()` gives a fresh migrated database; close it in the test.
 */
export function cloudDbs(): Array<[kind: 'pglite' | 'postgres', open: OpenCloudDb]> {
  return [
    ['pglite', () => openDb({})],
    ['postgres', async () => openDb({ url: await freshPostgresUrl() })],
  ];
}
