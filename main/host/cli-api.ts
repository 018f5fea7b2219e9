/**
 * How CLI commands reach a running Tessera over its HTTP API: `--url` (default http://127.0.0.1:7420) with the
 * token from `--token`, `$TESSERA_TOKEN` or `<data>/api-token`. A refusal throws the server's TesseraError, so
 * the command prints `error CODE: message` with the server's code (cli-report.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isErrorCode, TesseraError } from '../common/errors.js';
import type { CliIo, Options } from './cli.js';
import { DEFAULT_HOST, DEFAULT_PORT, TOKEN_FILE, resolveDataDir } from './config.js';

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

export const connection: Options = { url: { type: 'string' }, token: { type: 'string' }, data: { type: 'string' } };
export const connectionFlags: Array<[string, string]> = [
  ['--url URL', `The running Tessera (default http://${DEFAULT_HOST}:${DEFAULT_PORT}).`],
  ['--token T', 'API token (default $TESSERA_TOKEN, else <data>/api-token).'],
  ['--data DIR', 'Data folder holding api-token (default: $TESSERA_DATA, else the platform user-data folder).'],
];

/** The running Tessera the options name (`--url`) and the token to reach it with (`--token`, `$TESSERA_TOKEN`, `<data>/api-token`). */
export function apiConnection(values: Record<string, string | boolean | undefined>, io: CliIo): { url: string; token: string } {
  const url = (str(values['url']) ?? `http://${DEFAULT_HOST}:${DEFAULT_PORT}`).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+$/.test(url)) throw new TesseraError('CONFIG_INVALID', `--url must be an origin like http://127.0.0.1:7420, got ${JSON.stringify(url)}.`);
  let token = str(values['token']) ?? io.env['TESSERA_TOKEN'];
  if (!token) {
    const file = join(resolve(resolveDataDir(str(values['data']), io.env)), TOKEN_FILE);
    if (!existsSync(file)) throw new TesseraError('CONFIG_INVALID', `No API token: pass --token, set TESSERA_TOKEN, or point --data at the folder holding ${TOKEN_FILE} (looked at ${file}).`);
    token = readFileSync(file, 'utf8').trim();
  }
  return { url, token };
}

/** A JSON request function bound to the running Tessera the options name. */
export function apiClient(values: Record<string, string | boolean | undefined>, io: CliIo) {
  const { url, token } = apiConnection(values, io);
  return async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<Record<string, unknown>> => {
    let res: Response;
    try {
      res = await fetch(url + path, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    } catch (err) {
      throw new TesseraError('NOT_READY', `Cannot reach Tessera at ${url}: ${(err as Error).message}. Is it running (tessera start)?`);
    }
    const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (!res.ok) {
      const e = json['error'] as { code?: unknown; message?: unknown } | undefined;
      throw new TesseraError(isErrorCode(e?.code) ? e.code : 'INTERNAL', typeof e?.message === 'string' ? e.message : `HTTP ${res.status} from ${path}.`);
    }
    return json;
  };
}

