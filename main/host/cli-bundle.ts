/**
 * `tessera bundle verify FILE` (issue 5 §6): checks an offline bundle with no network and no data folder, with
 * the same code as `POST /v1/verify` and the renderer (common/bundle.ts). Exit 0 valid, 1 invalid (the code,
 * the place and the reason on stderr), 2 usage error.
 */
import { readFileSync, statSync } from 'node:fs';
import { MAX_BUNDLE_BYTES } from '../common/bundle.js';
import type { BundleVerdict } from '../common/bundle.js';
import { TesseraError } from '../common/errors.js';
import { verifyBundleOnHost } from '../runtime/receipts/bundle.js';
import type { Command } from './cli.js';

const MARK = { pass: '✓', fail: '✗', skipped: '·' } as const;

/** The human form of a verdict: one line per check, then the outcome. */
export function formatVerdict(v: BundleVerdict): string {
  const lines = v.checks.map((c) => `  ${MARK[c.status]} ${c.label}${c.status === 'skipped' ? '' : `: ${c.detail}`}`);
  const head = v.ok
    ? `valid: capsule ${v.capsule} (${v.decision ?? 'no decision'}), ${v.receipts} receipt${v.receipts === 1 ? '' : 's'} signed by ${v.device}`
    : `invalid: ${v.error!.code} in ${v.error!.where}`;
  return `${head}\n${lines.join('\n')}\n`;
}

function readBundle(file: string): Uint8Array {
  let size: number;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw new TesseraError('VALIDATION_FAILED', `${file} is not a file; give the bundle's .zip file.`);
    size = stat.size;
  } catch (cause) {
    if (cause instanceof TesseraError) throw cause;
    const code = (cause as NodeJS.ErrnoException).code;
    throw new TesseraError('VALIDATION_FAILED', code === 'ENOENT' ? `${file}: no such file.` : `Cannot read ${file}: ${(cause as Error).message}`, { cause });
  }
  if (size > MAX_BUNDLE_BYTES) throw new TesseraError('BUNDLE_ZIP_INVALID', `${file} is ${size} bytes, over the ${MAX_BUNDLE_BYTES}-byte limit of a bundle.`);
  return new Uint8Array(readFileSync(file));
}

const bundleVerify: Command = {
  name: 'bundle verify',
  summary: 'Verify an offline bundle (ZIP) with no network: index hashes, keys, signatures, chain, manifests, device-log proofs. Exit 0 valid, 1 invalid.',
  usage: 'tessera bundle verify FILE [--device KEYID] [--json]',
  positionals: 1,
  options: { json: { type: 'boolean' }, device: { type: 'string' } },
  flags: [
    ['--device KEYID', "Also require the receipts to be signed by this device key (its id, b3:…; a device's is `log` in GET /v1/log/root)."],
    ['--json', 'Print the verdict as JSON (the same object POST /v1/verify answers).'],
  ],
  async run(values, positionals, io) {
    const file = positionals[0];
    if (!file) throw new TesseraError('CONFIG_INVALID', `FILE is required. Usage: ${this.usage}`);
    const device = typeof values['device'] === 'string' ? values['device'] : undefined;
    if (device !== undefined && !/^b3:[0-9a-f]{64}$/.test(device)) throw new TesseraError('CONFIG_INVALID', `--device must be a key id (b3: and 64 hex digits), not ${JSON.stringify(device)}.`);
    let verdict: BundleVerdict;
    try {
      verdict = verifyBundleOnHost(readBundle(file));
    } catch (err) {
      if (!(err instanceof TesseraError)) throw err;
      // A file that cannot be read is reported like any invalid bundle, so --json always prints a verdict.
      verdict = { ok: false, verdict: 'INVALID', capsule: null, decision: null, device: null, receipts: 0, card_url: null, checks: [], error: { code: err.code, where: file, message: err.message } };
    }
    // A bundle is whole on its own; whether its device is the one expected is the reader's question.
    if (verdict.ok && device !== undefined && verdict.device !== device) {
      verdict = { ...verdict, ok: false, verdict: 'INVALID', error: { code: 'KEY_UNKNOWN', where: 'keys/keys.json', message: `the receipts are signed by device ${String(verdict.device)}, not by the expected ${device}` } };
    }
    if (values['json']) io.stdout(`${JSON.stringify(verdict, null, 2)}\n`);
    else io.stdout(formatVerdict(verdict));
    if (!verdict.ok) io.stderr(`invalid: ${verdict.error!.code} in ${verdict.error!.where}: ${verdict.error!.message}\n`);
    return verdict.ok ? 0 : 1;
  },
};

export const BUNDLE_COMMANDS: Command[] = [bundleVerify];
