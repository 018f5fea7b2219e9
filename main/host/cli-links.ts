/**
 * `tessera link …`: capability links to capsules (issue 14 §8, main/runtime/links), against a running Tessera over
 * its HTTP API (the same connection flags as `tessera consent`).
 *
 * - `link CAPSULE [--ttl 30d] [--label TEXT] [--json]`: a new link; prints the URL a phone opens (shown once: the
 *   device keeps only the token's hash).
 * - `link revoke ID [--json]`: the link answers 404 LINK_NOT_FOUND from now on.
 */
import { TesseraError } from '../common/errors.js';
import type { CapsuleLink } from '../common/api.js';
import { apiClient, connection, connectionFlags } from './cli-api.js';
import { reporting } from './cli-report.js';
import type { Command } from './cli.js';

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `30d`, `12h`, `90m`, `45s` → milliseconds; CONFIG_INVALID otherwise. */
export function parseTtl(text: string): number {
  const match = /^(\d{1,6})([smhd])$/.exec(text.trim());
  if (!match) throw new TesseraError('CONFIG_INVALID', `--ttl must be a number and a unit (s, m, h or d), e.g. 30d; got ${JSON.stringify(text)}.`);
  return Number(match[1]) * UNITS[match[2]!]!;
}

const linkCreate: Command = {
  name: 'link',
  summary: "Create a capability link to a capsule: a URL a phone on the kiosk's network opens with no token (read-only, revocable).",
  usage: 'tessera link CAPSULE [--ttl 30d] [--label TEXT] [--json] [--url URL] [--token T] [--data DIR]',
  positionals: 1,
  options: { ...connection, ttl: { type: 'string' }, label: { type: 'string' }, json: { type: 'boolean' } },
  flags: [
    ['--ttl D', 'Lifetime: a number and s, m, h or d (default 90d, at most 5 years).'],
    ['--label TEXT', "A note for the operator's list (GET /api/links); never shown on the card."],
    ['--json', 'Print the link as JSON.'],
    ...connectionFlags,
  ],
  run(values, positionals, io) {
    return reporting(io, async () => {
      const capsule = positionals[0];
      if (!capsule) throw new TesseraError('CONFIG_INVALID', `CAPSULE is required (a capsule cid, b3:…). Usage: ${this.usage}`);
      const ttl = typeof values['ttl'] === 'string' ? parseTtl(values['ttl']) : undefined;
      const label = typeof values['label'] === 'string' ? values['label'] : undefined;
      const api = apiClient(values, io);
      const link = (await api('POST', '/api/links', { capsule, ...(ttl !== undefined ? { ttl_ms: ttl } : {}), ...(label !== undefined ? { label } : {}) })) as unknown as CapsuleLink;
      if (values['json']) {
        io.stdout(`${JSON.stringify(link, null, 2)}\n`);
        return 0;
      }
      io.stdout(`${link.url}\n`);
      io.stderr(`Link ${link.id} to ${link.capsule}, valid until ${link.expires_at}. The token is shown only now; revoke with: tessera link revoke ${link.id}\n`);
      return 0;
    });
  },
};

const linkRevoke: Command = {
  name: 'link revoke',
  summary: 'Revoke a capability link: it answers 404 LINK_NOT_FOUND from now on (operator).',
  usage: 'tessera link revoke ID [--json] [--url URL] [--token T] [--data DIR]',
  positionals: 1,
  options: { ...connection, json: { type: 'boolean' } },
  flags: [['--json', 'Print the revoked link as JSON.'], ...connectionFlags],
  run(values, positionals, io) {
    return reporting(io, async () => {
      const id = positionals[0];
      if (!id) throw new TesseraError('CONFIG_INVALID', `ID is required (lnk_…, as tessera link printed it). Usage: ${this.usage}`);
      const api = apiClient(values, io);
      const link = await api('POST', `/api/links/${encodeURIComponent(id)}/revoke`, {});
      if (values['json']) io.stdout(`${JSON.stringify(link, null, 2)}\n`);
      else io.stdout(`Revoked ${id} (capsule ${String(link['capsule'])}) at ${String(link['revoked_at'])}.\n`);
      return 0;
    });
  },
};

/** `link`, `link revoke`. */
export const LINK_COMMANDS: Command[] = [linkCreate, linkRevoke];
