/**
 * `tessera consent …`: the approver's side of k-of-n consent (seed 004 §4, §6), against a running Tessera
 * over its HTTP API.
 *
 * - `consent list [--state open|approved|rejected] [--json]`: the consent requests, newest first.
 * - `consent approve ID --key KEY` / `consent reject ID --key KEY`: signs the decision
 *   (`{v, consent, capsule, decision, approver}`, DSSE over its canonical bytes, Ed25519) with the approver's
 *   private key and posts it; prints the capsule's verdict after the vote.
 *
 * The runtime is reached at `--url` (default http://127.0.0.1:7420) with the token from `--token`,
 * `$TESSERA_TOKEN` or `<data>/api-token`. Errors print as `error CODE: message` with the server's code.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { canonicalBytes } from '../common/canonical.js';
import { isErrorCode, TesseraError } from '../common/errors.js';
import { CONSENT_PAYLOAD_TYPE, CONSENT_VERSION } from '../common/receipt.js';
import type { ConsentDecision } from '../common/receipt.js';
import { readPrivateKey, signEnvelope } from '../runtime/keys/index.js';
import { reporting } from './cli-report.js';
import type { CliIo, Command, Options } from './cli.js';
import { DEFAULT_HOST, DEFAULT_PORT, TOKEN_FILE, resolveDataDir } from './config.js';

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

export const connection: Options = { url: { type: 'string' }, token: { type: 'string' }, data: { type: 'string' } };
export const connectionFlags: Array<[string, string]> = [
  ['--url URL', `The running Tessera (default http://${DEFAULT_HOST}:${DEFAULT_PORT}).`],
  ['--token T', 'API token (default $TESSERA_TOKEN, else <data>/api-token).'],
  ['--data DIR', 'Data folder holding api-token (default: $TESSERA_DATA, else the platform user-data folder).'],
];

interface ConsentJson {
  id: string;
  capsule: string;
  k: number;
  n: number;
  state: string;
  approvers: Array<{ keyid: string; name: string }>;
  votes: Array<{ approver: string; decision: string; at: string }>;
  created_at: string;
  card_url?: string;
}

/** A JSON client of a running Tessera (`--url`, `--token`, `$TESSERA_TOKEN` or `<data>/api-token`); errors keep the server's code. */
export function client(values: Record<string, string | boolean | undefined>, io: CliIo) {
  const url = (str(values['url']) ?? `http://${DEFAULT_HOST}:${DEFAULT_PORT}`).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+$/.test(url)) throw new TesseraError('CONFIG_INVALID', `--url must be an origin like http://127.0.0.1:7420, got ${JSON.stringify(url)}.`);
  let token = str(values['token']) ?? io.env['TESSERA_TOKEN'];
  if (!token) {
    const file = join(resolve(resolveDataDir(str(values['data']), io.env)), TOKEN_FILE);
    if (!existsSync(file)) throw new TesseraError('CONFIG_INVALID', `No API token: pass --token, set TESSERA_TOKEN, or point --data at the folder holding ${TOKEN_FILE} (looked at ${file}).`);
    token = readFileSync(file, 'utf8').trim();
  }
  return async (method: 'GET' | 'POST', path: string, body?: unknown): Promise<Record<string, unknown>> => {
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

const consentList: Command = {
  name: 'consent list',
  summary: 'List consent requests (k-of-n approvals of ASK decisions) of a running Tessera.',
  usage: 'tessera consent list [--state open|approved|rejected] [--json] [--url URL] [--token T] [--data DIR]',
  options: { ...connection, state: { type: 'string' }, json: { type: 'boolean' } },
  flags: [['--state S', 'Only requests in this state: open, approved or rejected.'], ['--json', 'Print the requests as JSON.'], ...connectionFlags],
  run(values, _positionals, io) {
    return reporting(io, async () => {
      const state = str(values['state']);
      if (state !== undefined && !['open', 'approved', 'rejected'].includes(state)) throw new TesseraError('CONFIG_INVALID', `--state must be open, approved or rejected, got ${JSON.stringify(state)}.`);
      const api = client(values, io);
      const { consents } = (await api('GET', `/v1/consents${state ? `?state=${state}` : ''}`)) as { consents: ConsentJson[] };
      if (values['json']) {
        io.stdout(`${JSON.stringify(consents, null, 2)}\n`);
        return 0;
      }
      if (consents.length === 0) io.stdout('no consent requests\n');
      for (const c of consents) {
        const approvals = c.votes.filter((v) => v.decision === 'approve').length;
        io.stdout(`${c.id}  ${c.state.padEnd(8)}  ${approvals}/${c.k} of ${c.n} approvers  capsule ${c.capsule}  ${c.created_at}\n`);
        for (const a of c.approvers) {
          const vote = c.votes.find((v) => v.approver === a.keyid);
          // An approver who did not vote on a closed request is no longer awaited.
          io.stdout(`    ${(vote ? vote.decision : c.state === 'open' ? 'pending' : 'no vote').padEnd(7)}  ${a.name}  ${a.keyid}\n`);
        }
      }
      return 0;
    });
  },
};

function decisionCommand(action: 'approve' | 'reject'): Command {
  return {
    name: `consent ${action}`,
    summary: `${action === 'approve' ? 'Approve' : 'Reject'} a consent request, signing the decision with an approver's key.`,
    usage: `tessera consent ${action} ID --key KEY [--url URL] [--token T] [--data DIR]`,
    positionals: 1,
    options: { ...connection, key: { type: 'string' } },
    flags: [['--key KEY', "The approver's Ed25519 private key (PKCS#8 PEM, mode 0600; tessera keygen writes one)."], ...connectionFlags],
    run(values, positionals, io) {
      return reporting(io, async () => {
        const id = positionals[0];
        const keyFile = str(values['key']);
        if (!id || !keyFile) throw new TesseraError('CONFIG_INVALID', `ID and --key are required. Usage: ${this.usage}`);
        const key = readPrivateKey(keyFile);
        const api = client(values, io);
        const { consents } = (await api('GET', '/v1/consents?limit=1000')) as { consents: ConsentJson[] };
        const consent = consents.find((c) => c.id === id);
        if (!consent) throw new TesseraError('CONSENT_NOT_FOUND', `No consent request ${id} (see tessera consent list).`);
        const decision: ConsentDecision = { v: CONSENT_VERSION, consent: id, capsule: consent.capsule, decision: action, approver: key.keyid };
        const envelope = signEnvelope(CONSENT_PAYLOAD_TYPE, canonicalBytes(decision), [key]);
        const result = (await api('POST', `/v1/consents/${id}/${action}`, envelope)) as { verdict: string; consent: ConsentJson };
        const approvals = result.consent.votes.filter((v) => v.decision === 'approve').length;
        io.stdout(`${action === 'approve' ? 'Approved' : 'Rejected'} ${id} as ${key.keyid}: ${approvals}/${result.consent.k} approvals, request ${result.consent.state}, capsule verdict ${result.verdict}.\n`);
        if (result.consent.card_url) io.stdout(`  card: ${result.consent.card_url}\n`);
        return 0;
      });
    },
  };
}

/** `consent list`, `consent approve`, `consent reject`. */
export const CONSENT_COMMANDS: Command[] = [consentList, decisionCommand('approve'), decisionCommand('reject')];
