import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE_CHECKS, buildBundle, receiptFileName, verifyBundle } from '../../main/common/bundle.js';
import type { BundleVerdict } from '../../main/common/bundle.js';
import { canonicalBytes } from '../../main/common/canonical.js';
import { cidOfBytes } from '../../main/common/cid.js';
import { fromBase64, toBase64 } from '../../main/common/dsse.js';
import { crc32, readZip, writeZip } from '../../main/common/zip.js';
import { generateKeyPair, verifyEd25519 } from '../../main/runtime/keys/index.js';
import { qrPng } from '../../main/runtime/receipts/qr-png.js';
import { makeBundleFixture } from '../helpers/bundle-fixture.js';
import type { BundleFixture } from '../helpers/bundle-fixture.js';
import { tempDir } from '../helpers/tmp.js';

let fx: BundleFixture;
let dir: string;
beforeAll(() => {
  dir = tempDir('tessera-bundle-', 'file');
  fx = makeBundleFixture(dir, { others: 5, delivery: true });
});
afterAll(() => fx?.close());

const fast = { verify: verifyEd25519 };
const files = () => Object.fromEntries(readZip(fx.bundle));
const text = (b: Uint8Array) => new TextDecoder().decode(b);
/** Rebuilds a container exactly as the bundle writer does (common/zip.ts): only the contents differ. */
function rezip(entries: Record<string, Uint8Array>): Uint8Array {
  return writeZip(Object.entries(entries));
}
/** Replaces every occurrence of `from` (ASCII) by `to` (same length) in a copy of `bytes`: a name in both headers. */
function replaceAll(bytes: Uint8Array, from: string, to: string): Uint8Array {
  const [a, b] = [new TextEncoder().encode(from), new TextEncoder().encode(to)];
  expect(b.length).toBe(a.length);
  const copy = bytes.slice();
  let hits = 0;
  for (let i = 0; i + a.length <= copy.length; i++) {
    if (a.every((x, j) => copy[i + j] === x)) {
      copy.set(b, i);
      hits++;
    }
  }
  expect(hits).toBeGreaterThan(0);
  return copy;
}
function expectFailure(v: BundleVerdict, code: string, where: string | RegExp): void {
  expect(v.ok, JSON.stringify(v.error)).toBe(false);
  expect(v.verdict).toBe('INVALID');
  expect(v.error?.code).toBe(code);
  if (typeof where === 'string') expect(v.error?.where).toBe(where);
  else expect(v.error?.where).toMatch(where);
  expect(v.checks.filter((c) => c.status === 'fail')).toHaveLength(1);
}

describe('offline bundle: building', () => {
  it('has exactly the documented layout, stored entries in order', () => {
    expect(Object.keys(files())).toEqual([
      'README.txt',
      'index.json',
      'index.sig',
      'capsule.json',
      'receipts/001.dsse.json',
      'receipts/002.dsse.json',
      'receipts/003.dsse.json',
      'keys/keys.json',
      `keys/${fx.deviceKey.keyid.slice(3)}.pem`,
      'plugins/001.json',
      'plugins/002.json',
      'log/inclusion.json',
      'qr.png',
    ]);
  });

  it('makes capsule.json hash to the capsule cid and index.json record every other file', () => {
    const f = files();
    expect(cidOfBytes(f['capsule.json']!)).toBe(fx.cid);
    const index = JSON.parse(text(f['index.json']!)) as { capsule: string; device: string; card_url: string; files: Record<string, string> };
    expect(index).toMatchObject({ capsule: fx.cid, device: fx.deviceKey.keyid, card_url: fx.cardUrl });
    for (const [name, bytes] of Object.entries(f)) {
      if (name === 'index.json' || name === 'index.sig') continue;
      expect(index.files[name], name).toBe(cidOfBytes(bytes));
    }
    expect(text(f['README.txt']!)).toContain(`b3sum capsule.json                   -> ${fx.cid.slice(3)}`);
    expect(text(f['README.txt']!)).toContain(`openssl pkeyutl -verify -pubin -inkey keys/${fx.deviceKey.keyid.slice(3)}.pem -rawin -in pae.bin -sigfile sig.bin`);
  });

  it('computes the same CRC-32 as zlib', () => {
    for (const bytes of Object.values(files())) expect(crc32(bytes)).toBe(zlibCrc32(bytes));
  });

  it('is a standard ZIP: python3 zipfile and unzip test it and list the layout, and README.txt describes the container', () => {
    const path = join(dir, 'bundle.zip');
    writeFileSync(path, fx.bundle);
    const names = Object.keys(files());
    const python = spawnSync('python3', ['-m', 'zipfile', '-t', path], { encoding: 'utf8' });
    expect(python.status, python.stderr).toBe(0);
    const listed = spawnSync('python3', ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print("\\n".join(f"{i.filename} {i.compress_type} {i.file_size} {i.CRC}" for i in z.infolist()))', path], { encoding: 'utf8' });
    expect(listed.status, listed.stderr).toBe(0);
    expect(listed.stdout.trim().split('\n')).toEqual(names.map((n) => `${n} 0 ${files()[n]!.length} ${crc32(files()[n]!)}`));
    const unzip = spawnSync('unzip', ['-t', path], { encoding: 'utf8' });
    expect(unzip.status, unzip.stderr).toBe(0);
    expect(unzip.stdout).toContain('No errors detected');
    const unzipList = spawnSync('unzip', ['-Z1', path], { encoding: 'utf8' });
    expect(unzipList.stdout.trim().split('\n')).toEqual(names);
    expect(text(files()['README.txt']!)).toContain('local header  50 4b 03 04 | need 20 | flags 0x0800 (UTF-8 names) | method 0');
  });
});

describe('offline bundle: verifying', () => {
  it('accepts the real bundle with every check passing, in pure JS and with node:crypto', () => {
    for (const v of [verifyBundle(fx.bundle), verifyBundle(fx.bundle, fast)]) {
      expect(v.error).toBeUndefined();
      expect(v).toMatchObject({ ok: true, verdict: 'OK', capsule: fx.cid, decision: 'ACK', device: fx.deviceKey.keyid, receipts: 3, card_url: fx.cardUrl });
      expect(v.checks.map((c) => [c.id, c.status])).toEqual(BUNDLE_CHECKS.map((c) => [c.id, 'pass']));
      expect(v.checks.find((c) => c.id === 'receipts')!.detail).toBe('INTENT → RESULT → DELIVERY');
    }
  });

  it('fails, naming the place, for every single flipped byte of the bundle', () => {
    const where = new Map<string, number>();
    const t0 = performance.now();
    const copy = fx.bundle.slice();
    for (let i = 0; i < copy.length; i++) {
      copy[i] = copy[i]! ^ 0x01;
      const v = verifyBundle(copy, fast);
      copy[i] = copy[i]! ^ 0x01;
      if (v.ok || !v.error?.code.startsWith('BUNDLE_') || v.error.where === '') throw new Error(`flipping byte ${i} was not caught: ${JSON.stringify(v.error)}`);
      where.set(v.error.code, (where.get(v.error.code) ?? 0) + 1);
    }
    const ms = performance.now() - t0;
    console.log(`flipped each of ${copy.length} bytes in ${ms.toFixed(0)} ms: ${JSON.stringify(Object.fromEntries(where))}`);
    expect(verifyBundle(copy, fast).ok).toBe(true);
  }, 300_000);

  it('names the changed file for a flipped byte in any file when the container is rebuilt with fresh CRCs', () => {
    const f = files();
    let cases = 0;
    for (const [name, bytes] of Object.entries(f)) {
      for (const at of new Set([0, 1, Math.floor(bytes.length / 3), Math.floor(bytes.length / 2), bytes.length - 2, bytes.length - 1])) {
        const changed = bytes.slice();
        changed[at] = changed[at]! ^ 0x04;
        const v = verifyBundle(rezip({ ...f, [name]: changed }), fast);
        expect(v.ok, `${name}[${at}]`).toBe(false);
        // index.json's own bytes are covered by its signature (index.sig) or fail to parse as the index.
        const expected = name === 'index.json' ? ['index.json', 'index.sig'] : [name];
        expect(expected, `${name}[${at}]: ${JSON.stringify(v.error)}`).toContain(v.error!.where);
        cases++;
      }
    }
    expect(cases).toBeGreaterThan(60);
  });

  it('names the file whose content changed when the container is rebuilt around it', () => {
    const f = files();
    const receipt = JSON.parse(text(f['receipts/002.dsse.json']!)) as { payload: string };
    receipt.payload = toBase64(new TextEncoder().encode(text(fromBase64(receipt.payload)).replace('"ACK"', '"NACK"')));
    const v = verifyBundle(rezip({ ...f, 'receipts/002.dsse.json': new TextEncoder().encode(JSON.stringify(receipt)) }), fast);
    expectFailure(v, 'BUNDLE_HASH_MISMATCH', 'receipts/002.dsse.json');
    expect(v.checks.find((c) => c.id === 'hashes')!.status).toBe('fail');
  });

  it('catches a changed file even when its hash in index.json is updated too: the index signature fails', () => {
    const f = files();
    const png = qrPng('https://evil.example/');
    const index = JSON.parse(text(f['index.json']!)) as { files: Record<string, string> };
    index.files['qr.png'] = cidOfBytes(png);
    expectFailure(verifyBundle(rezip({ ...f, 'qr.png': png, 'index.json': canonicalBytes(index) }), fast), 'BUNDLE_INDEX_INVALID', 'index.sig');
  });

  it("verifies a capsule approved by consent with the approver's bundled key, and names that key when it is swapped", () => {
    const withConsent = makeBundleFixture(tempDir('tessera-bundle-consent-'), { others: 0, consent: true });
    try {
      const v = verifyBundle(withConsent.bundle, fast);
      expect(v.error).toBeUndefined();
      expect(v.checks.find((c) => c.id === 'receipts')!.detail).toBe('INTENT → RESULT → CONSENT');
      const keys = withConsent.receipts.publicKeys(withConsent.cid);
      expect(keys.map((k) => k.role).sort()).toEqual(['approver', 'device']);
      const approver = keys.find((k) => k.role === 'approver')!;
      const f = Object.fromEntries(readZip(withConsent.bundle));
      // Whatever order the store lists keys in, the bundle has its one canonical layout.
      for (const order of [keys, [...keys].reverse()]) {
        const again = buildBundle({
          capsule: withConsent.capsule,
          receipts: withConsent.receipts.receipts(withConsent.cid),
          keys: order.map((k) => ({ keyid: k.keyid, pem: k.publicKeyPem, role: k.role })),
          manifests: withConsent.receipts.manifests(withConsent.cid),
          log: JSON.parse(text(f['log/inclusion.json']!)) as never,
          cardUrl: withConsent.cardUrl,
          qrPng: f['qr.png']!,
          createdAt: '2026-03-04T06:00:00.000Z',
          signer: withConsent.deviceKey,
        });
        expect(verifyBundle(again, fast).error).toBeUndefined();
      }
      const name = `keys/${approver.keyid.slice(3)}.pem`;
      const swapped = { ...f, [name]: new TextEncoder().encode(generateKeyPair().publicKeyPem) };
      expectFailure(verifyBundle(rezip(swapped), fast), 'BUNDLE_KEY_INVALID', name);
    } finally {
      withConsent.close();
    }
  });

  it('refuses a chain whose receipts are out of order, naming the receipt and field', () => {
    const envelopes = fx.receipts.receipts(fx.cid);
    const swapped = [envelopes[0]!, envelopes[2]!, envelopes[1]!];
    const bundle = rebuild({ receipts: swapped });
    const v = verifyBundle(bundle, fast);
    expectFailure(v, 'BUNDLE_CHAIN_INVALID', `${receiptFileName(1)} (prev)`);
    expect(v.error!.message).toContain('receipt 1 (prev): expected');
  });

  it('refuses a receipt signed by a key other than the bundled device key', () => {
    const other = fx.receipts.receipts(fx.cid).map((e) => ({ ...e, signatures: [{ keyid: e.signatures[0]!.keyid, sig: toBase64(new Uint8Array(64).fill(7)) }] }));
    expectFailure(verifyBundle(rebuild({ receipts: other }), fast), 'BUNDLE_CHAIN_INVALID', `${receiptFileName(0)} (signature)`);
  });

  it('refuses a manifest that does not match its cid, or a missing one the receipts name', () => {
    const manifests = fx.receipts.manifests(fx.cid);
    expectFailure(verifyBundle(rebuild({ manifests: [manifests[0]!] }), fast), 'BUNDLE_PLUGIN_MISMATCH', 'plugins/');
    const f = files();
    const plugin = JSON.parse(text(f['plugins/002.json']!)) as { manifest: { version: string } };
    plugin.manifest.version = '9.9.9';
    const tampered = { ...f, 'plugins/002.json': new TextEncoder().encode(JSON.stringify(plugin)) };
    expectFailure(verifyBundle(rezip(tampered), fast), 'BUNDLE_HASH_MISMATCH', 'plugins/002.json');
  });

  it('refuses an inclusion proof that does not lead to the signed tree head', () => {
    const log = JSON.parse(text(files()['log/inclusion.json']!)) as { tree_head: never; proofs: Array<{ path: string[] }> };
    log.proofs[1]!.path[0] = '00'.repeat(32);
    expectFailure(verifyBundle(rebuild({ log }), fast), 'BUNDLE_LOG_INVALID', 'log/inclusion.json');
  });

  it('refuses unexpected, unsafe, duplicate and missing entries', () => {
    const f = files();
    // The writer refuses unsafe names, so they are patched into both headers of a container built with a safe one.
    for (const unsafe of ['../evil.sh', '/etc/evil', 'a\\b/evil', 'C:/x/evil']) {
      const safe = 'x'.repeat(unsafe.length - 4) + 'evil';
      const v = verifyBundle(replaceAll(rezip({ ...f, [safe]: new Uint8Array([1]) }), safe, unsafe), fast);
      expectFailure(v, 'BUNDLE_ENTRY_INVALID', unsafe);
      expect(v.checks.find((c) => c.id === 'zip')!.status).toBe('pass');
      expect(v.error!.message).toContain('is not a safe relative path');
    }
    expectFailure(verifyBundle(rezip({ ...f, 'notes.txt': new Uint8Array([1]) }), fast), 'BUNDLE_ENTRY_INVALID', 'notes.txt');
    const { 'qr.png': _png, ...withoutQr } = f;
    expectFailure(verifyBundle(rezip(withoutQr), fast), 'BUNDLE_ENTRY_INVALID', 'qr.png');
    // Without its last receipt the bundle is still numbered 001 to N-1: the index names the one that is gone.
    const last = Object.keys(f).filter((n) => n.startsWith('receipts/')).sort().at(-1)!;
    const { [last]: _last, ...withoutLast } = f;
    const dropped = verifyBundle(rezip(withoutLast), fast);
    expectFailure(dropped, 'BUNDLE_ENTRY_INVALID', last);
    expect(dropped.error!.message).toBe(`the bundle has no ${last}, which index.json lists`);
    // Rename receipts/003 to receipts/002 in its local header and directory record: two entries, one name.
    const dup = fx.bundle.slice();
    const from = new TextEncoder().encode('receipts/003.dsse.json');
    for (let i = 0; i + from.length <= dup.length; i++) if (from.every((b, j) => dup[i + j] === b)) dup[i + 11] = '2'.charCodeAt(0);
    expectFailure(verifyBundle(dup, fast), 'BUNDLE_ENTRY_INVALID', 'receipts/002.dsse.json');
  });

  it('says a bundle was most likely rebuilt by a ZIP tool when it was extracted and zipped again', () => {
    const original = join(dir, 'original.zip');
    const rebuilt = join(dir, 'rebuilt.zip');
    writeFileSync(original, fx.bundle);
    // What someone who unzips a bundle and zips the folder back gets: the same files, deflated, in a new container.
    const python = spawnSync('python3', ['-c', 'import sys, zipfile\nsrc = zipfile.ZipFile(sys.argv[1])\nwith zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED) as out:\n  [out.writestr(i.filename, src.read(i)) for i in src.infolist()]', original, rebuilt], { encoding: 'utf8' });
    expect(python.status, python.stderr).toBe(0);
    const v = verifyBundle(new Uint8Array(readFileSync(rebuilt)), fast);
    expect(v.error).toMatchObject({ code: 'BUNDLE_ZIP_INVALID' });
    expect(v.error!.message).toContain('this looks like a ZIP rebuilt by another tool');
    // A flipped byte of the original is not blamed on a ZIP tool.
    const flipped = fx.bundle.slice();
    flipped[10] = flipped[10]! ^ 0x01;
    expect(verifyBundle(flipped, fast).error!.message).not.toContain('ZIP rebuilt');
  });

  it('turns bytes that are not a bundle into BUNDLE_ZIP_INVALID, never an exception', () => {
    for (const bytes of [new Uint8Array(0), new TextEncoder().encode('%PDF-1.7 not a zip'), fx.bundle.subarray(0, fx.bundle.length - 1), fx.bundle.subarray(0, 100), new Uint8Array(5000)]) {
      expectFailure(verifyBundle(bytes, fast), 'BUNDLE_ZIP_INVALID', 'zip');
    }
    // README.txt marked deflated (method 8) in its local header (offset 8) and directory record.
    const deflated = fx.bundle.slice();
    deflated[8] = 8;
    const record = new DataView(fx.bundle.buffer, fx.bundle.byteOffset).getUint32(fx.bundle.length - 6, true);
    deflated[record + 10] = 8;
    const compressed = verifyBundle(deflated, fast);
    expectFailure(compressed, 'BUNDLE_ZIP_INVALID', 'README.txt');
    expect(compressed.error!.message).toContain('compression method 8');
    const appended = new Uint8Array([...fx.bundle, 0]);
    expectFailure(verifyBundle(appended, fast), 'BUNDLE_ZIP_INVALID', 'zip');
    expect(verifyBundle('not bytes' as unknown as Uint8Array).error?.code).toBe('BUNDLE_ZIP_INVALID');
    const many = rezip(Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`keys/${i.toString(16).padStart(64, '0')}.pem`, new Uint8Array(1)])));
    const crowded = verifyBundle(many, fast);
    expectFailure(crowded, 'BUNDLE_ZIP_INVALID', 'zip');
    expect(crowded.error!.message).toContain('4096-entry limit');
  });

  it('refuses the right entries in another order, though each header is valid', () => {
    const f = files();
    const { 'qr.png': png, ...rest } = f;
    const v = verifyBundle(rezip({ 'qr.png': png!, ...rest }), fast);
    expectFailure(v, 'BUNDLE_ZIP_INVALID', 'qr.png');
    expect(v.checks.find((c) => c.id === 'files')!.status).toBe('fail');
    expect(v.error!.message).toContain('the bundle layout puts README.txt there');
  });
});

/** The fixture's bundle built again through buildBundle, with some inputs replaced (signed by the same device). */
function rebuild(change: { receipts?: ReturnType<BundleFixture['receipts']['receipts']>; manifests?: ReturnType<BundleFixture['receipts']['manifests']>; log?: unknown }): Uint8Array {
  const f = files();
  const log = change.log ?? JSON.parse(text(f['log/inclusion.json']!));
  return buildBundle({
    capsule: fx.capsule,
    receipts: change.receipts ?? fx.receipts.receipts(fx.cid),
    keys: fx.receipts.publicKeys(fx.cid).map((k) => ({ keyid: k.keyid, pem: k.publicKeyPem, role: k.role })),
    manifests: change.manifests ?? fx.receipts.manifests(fx.cid),
    log: log as never,
    cardUrl: fx.cardUrl,
    qrPng: f['qr.png']!,
    createdAt: '2026-03-04T06:00:00.000Z',
    signer: fx.deviceKey,
  });
}
