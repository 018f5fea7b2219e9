/**
 * "Check a receipt by hand" (README, and README.txt inside every bundle) done with the real tools: unzip, jq,
 * base64, OpenSSL (Ed25519 over the DSSE PAE bytes) and b3sum (BLAKE3 cids). The commands run are the ones the
 * bundle's README.txt prints, in a real shell, on a bundle built from receipts signed by the real receipt store.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBundleFixture } from '../helpers/bundle-fixture.js';
import type { BundleFixture } from '../helpers/bundle-fixture.js';
import { tempDir } from '../helpers/tmp.js';

let fx: BundleFixture;
let dir: string;
let readme: string;

beforeAll(() => {
  dir = tempDir('tessera-openssl-', 'file');
  fx = makeBundleFixture(dir, { others: 1 });
  writeFileSync(join(dir, 'bundle.zip'), fx.bundle);
  execFileSync('unzip', ['-q', 'bundle.zip', '-d', 'x'], { cwd: dir });
  readme = readFileSync(join(dir, 'x', 'README.txt'), 'utf8');
});
afterAll(() => fx?.close());

/** The shell lines of README.txt's step 2 (everything up to the openssl line, without the "->" notes). */
function readmeCommands(): string[] {
  const step = readme.slice(readme.indexOf('2. '), readme.indexOf('3. '));
  return step
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(R=|jq |T=|printf |cat |openssl )/.test(l));
}

function sh(script: string) {
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { cwd: join(dir, 'x'), encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('checking a receipt by hand with OpenSSL and b3sum', () => {
  it("verifies the first receipt's Ed25519 signature over the DSSE PAE with openssl pkeyutl, exactly as README.txt says", () => {
    const commands = readmeCommands();
    expect(commands).toHaveLength(7);
    expect(commands.at(-1)).toBe(`openssl pkeyutl -verify -pubin -inkey keys/${fx.deviceKey.keyid.slice(3)}.pem -rawin -in pae.bin -sigfile sig.bin`);
    const r = sh(commands.join('\n'));
    console.log(`$ ${commands.at(-1)}\n${r.stdout}`);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Signature Verified Successfully\n');
  });

  it('prints the receipt id and the capsule cid with b3sum', () => {
    const ids = fx.receipts.receiptIds(fx.cid);
    const payload = sh('b3sum payload.json');
    const capsule = sh('b3sum capsule.json');
    console.log(`$ b3sum payload.json\n${payload.stdout}$ b3sum capsule.json\n${capsule.stdout}`);
    expect(payload.stdout).toBe(`${ids[0]!.slice(3)}  payload.json\n`);
    expect(capsule.stdout).toBe(`${fx.cid.slice(3)}  capsule.json\n`);
    expect(readme).toContain(`b3sum capsule.json                   -> ${fx.cid.slice(3)}  capsule.json`);
    // The second receipt names the first by that id.
    const second = sh(`jq -r .payload receipts/002.dsse.json | base64 -d | jq -r .prev`);
    expect(second.stdout.trim()).toBe(ids[0]);
  });

  it('makes b3sum print, for every file, the hash index.json records', () => {
    const index = JSON.parse(readFileSync(join(dir, 'x', 'index.json'), 'utf8')) as { files: Record<string, string> };
    const names = Object.keys(index.files);
    const out = sh(`b3sum ${names.map((n) => `'${n}'`).join(' ')}`);
    expect(out.code).toBe(0);
    const printed = Object.fromEntries(out.stdout.trim().split('\n').map((line) => line.split('  ').reverse() as [string, string]));
    for (const name of names) expect(`b3:${printed[name]}`, name).toBe(index.files[name]);
  });

  it('makes openssl refuse the signature once one byte of the payload changes', () => {
    const commands = readmeCommands();
    const tamper = "printf 'x' | dd of=payload.json bs=1 seek=10 conv=notrunc status=none";
    const script = [...commands.slice(0, 3), tamper, ...commands.slice(3)].join('\n');
    const r = sh(script);
    console.log(`tampered: exit ${r.code}: ${r.stdout}${r.stderr.split('\n')[0]}`);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('Signature Verification Failure\n');
  });
});
