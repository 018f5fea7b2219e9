import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cidOfBytes } from '../../main/common/cid.js';
import { fromBase64, pae, toBase64 } from '../../main/common/dsse.js';
import type { DsseEnvelope } from '../../main/common/dsse.js';
import { verifyEnvelopeNoble } from '../../main/common/ed25519-verify.js';
import { generateKeyPair, keyidOf, readPrivateKey, readPublicKey, signEnvelope, verifyEnvelope, writePrivateKey } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';
import { combineTrustStores, openTrustStore, REVOKED_FILE, verifyTrusted } from '../../main/runtime/trust/index.js';
import { tempDir } from '../helpers/tmp.js';

const TYPE = 'application/vnd.tessera.test+json';
const posix = process.platform !== 'win32';
const text = (s: string) => new TextEncoder().encode(s);
const modeOf = (path: string) => statSync(path).mode & 0o777;
const keyFileError = (fragment: string) => expect.objectContaining({ code: 'KEY_FILE_INVALID', message: expect.stringContaining(fragment) });

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pem = (key: typeof rsa.privateKey, kind: 'public' | 'private') =>
  kind === 'public' ? (key.export({ format: 'pem', type: 'spki' }) as string) : (key.export({ format: 'pem', type: 'pkcs8' }) as string);

function openssl(args: string[], cwd: string) {
  return spawnSync('openssl', args, { cwd, encoding: 'utf8' });
}

function lookupFor(...keys: SigningKey[]) {
  return (keyid: string) => keys.find((k) => k.keyid === keyid);
}

describe('signing keys', () => {
  it('generates Ed25519 keys whose keyid is the cid of the raw 32-byte public key and that hide the private key', () => {
    const key = generateKeyPair();
    expect(key.publicKeyRaw).toHaveLength(32);
    expect(key.keyid).toBe(cidOfBytes(key.publicKeyRaw));
    expect(keyidOf(key.publicKeyRaw)).toBe(key.keyid);
    expect(key.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(readPublicKey(key.publicKeyPem).publicKeyRaw).toEqual(key.publicKeyRaw);
    expect(JSON.stringify(key)).not.toMatch(/PRIVATE/);
    expect(Object.keys(key).sort()).toEqual(['keyid', 'publicKeyPem', 'publicKeyRaw', 'sign']);
    key.publicKeyRaw.fill(0);
    expect(cidOfBytes(key.publicKeyRaw)).toBe(key.keyid);
    expect(generateKeyPair().keyid).not.toBe(key.keyid);
    expect(() => keyidOf(new Uint8Array(31))).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });

  it('writes a 0600 PKCS#8 file and a 0644 .pub atomically, and reads back the same key', () => {
    const dir = tempDir();
    const path = join(dir, 'sub', 'signing.key');
    const key = generateKeyPair();
    writePrivateKey(path, key);
    expect(readFileSync(path, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(readFileSync(`${path}.pub`, 'utf8')).toBe(key.publicKeyPem);
    if (posix) {
      expect(modeOf(path)).toBe(0o600);
      expect(modeOf(`${path}.pub`)).toBe(0o644);
    }
    expect(readdirSync(join(dir, 'sub')).sort()).toEqual(['signing.key', 'signing.key.pub']);
    const again = readPrivateKey(path);
    expect(again.keyid).toBe(key.keyid);
    expect(again.sign(text('m'))).toEqual(key.sign(text('m')));
    expect(readPublicKey(`${path}.pub`).keyid).toBe(key.keyid);
  });

  it('refuses to overwrite an existing private key unless asked to', () => {
    const path = join(tempDir(), 'signing.key');
    const first = generateKeyPair();
    const second = generateKeyPair();
    writePrivateKey(path, first);
    expect(() => writePrivateKey(path, second)).toThrow(keyFileError('already exists'));
    expect(readPrivateKey(path).keyid).toBe(first.keyid);
    writePrivateKey(path, second, { overwrite: true });
    expect(readPrivateKey(path).keyid).toBe(second.keyid);
    expect(readPublicKey(`${path}.pub`).keyid).toBe(second.keyid);
    expect(() => writePrivateKey(join(tempDir(), 'k'), { ...second })).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });

  it.skipIf(!posix)('refuses a private key file that group or others can read, telling the user to chmod 600', () => {
    const path = join(tempDir(), 'signing.key');
    writePrivateKey(path, generateKeyPair());
    chmodSync(path, 0o644);
    expect(() => readPrivateKey(path)).toThrow(keyFileError('chmod 600'));
    expect(() => readPrivateKey(path)).toThrow(keyFileError(path));
    chmodSync(path, 0o640);
    expect(() => readPrivateKey(path)).toThrow(keyFileError('mode 0640'));
    chmodSync(path, 0o600);
    expect(readPrivateKey(path).publicKeyRaw).toHaveLength(32);
  });

  it('rejects missing, non-PEM, encrypted, public and non-Ed25519 private key files, naming the file', () => {
    const dir = tempDir();
    const write = (name: string, content: string) => {
      const path = join(dir, name);
      writeFileSync(path, content, { mode: 0o600 });
      return path;
    };
    const encrypted = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'pw' }) as string;
    const cases: Array<[string, string]> = [
      [join(dir, 'missing.key'), 'no such file'],
      [dir, 'not a file'],
      [write('garbage.key', 'hello'), 'not a PEM file'],
      [write('broken.key', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'), 'not a valid private key'],
      [write('enc.key', encrypted), 'encrypted'],
      [write('pub.key', generateKeyPair().publicKeyPem), 'this is a public key'],
      [write('rsa.key', pem(rsa.privateKey, 'private')), 'RSA key'],
      [write('p256.key', pem(p256.privateKey, 'private')), 'EC (prime256v1) key'],
      [write('rsa1.key', rsa.privateKey.export({ format: 'pem', type: 'pkcs1' }) as string), '"RSA PRIVATE KEY"'],
      [write('big.key', 'x'.repeat(70 * 1024)), 'too large'],
    ];
    for (const [path, problem] of cases) {
      expect(() => readPrivateKey(path), path).toThrow(expect.objectContaining({ code: 'KEY_FILE_INVALID', message: expect.stringMatching(new RegExp(`${escape(path)}.*${escape(problem)}`)) }));
    }
  });

  it('reads public keys from PEM text or a file and rejects private keys and other key types', () => {
    const key = generateKeyPair();
    const path = join(tempDir(), 'k.pub');
    writeFileSync(path, key.publicKeyPem.replace(/\n/g, '\r\n'));
    expect(readPublicKey(path)).toEqual({ keyid: key.keyid, publicKeyRaw: key.publicKeyRaw, publicKeyPem: key.publicKeyPem });
    expect(() => readPublicKey(pem(rsa.publicKey, 'public'))).toThrow(keyFileError('RSA key'));
    expect(() => readPublicKey(pem(p256.publicKey, 'public'))).toThrow(keyFileError('EC (prime256v1) key'));
    expect(() => readPublicKey(pem(p256.privateKey, 'private'))).toThrow(keyFileError('this is a private key'));
    expect(() => readPublicKey('-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n')).toThrow(keyFileError('The public key PEM text'));
    expect(() => readPublicKey(join(tempDir(), 'none.pub'))).toThrow(keyFileError('no such file'));
  });

  it('signs envelopes with several keys, each signature verifying on its own', () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    const env = signEnvelope(TYPE, text('{"x":1}'), [a, b]);
    expect(env.payload).toBe(toBase64(text('{"x":1}')));
    expect(env.signatures.map((s) => s.keyid)).toEqual([a.keyid, b.keyid]);
    expect(verifyEnvelope(env, lookupFor(b)).keyid).toBe(b.keyid);
    expect(verifyEnvelopeNoble(env, lookupFor(a)).keyid).toBe(a.keyid);
    expect(() => signEnvelope(TYPE, text('x'), [])).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => signEnvelope('', text('x'), [a])).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });
});

describe('OpenSSL interoperability', () => {
  it('has a working OpenSSL 3 command line', () => {
    expect(execFileSync('openssl', ['version'], { encoding: 'utf8' })).toMatch(/^OpenSSL 3\./);
  });

  it('verifies our envelope signatures with openssl pkeyutl over the PAE, and rejects a changed PAE', () => {
    const dir = tempDir();
    const key = generateKeyPair();
    writePrivateKey(join(dir, 'signing.key'), key);
    const env = signEnvelope(TYPE, text('{"hello":"w\u00f6rld"}'), [key]);
    writeFileSync(join(dir, 'pae.bin'), pae(env.payloadType, fromBase64(env.payload)));
    writeFileSync(join(dir, 'sig.bin'), fromBase64(env.signatures[0]!.sig));
    const verify = (paeFile: string) => openssl(['pkeyutl', '-verify', '-pubin', '-inkey', 'signing.key.pub', '-rawin', '-in', paeFile, '-sigfile', 'sig.bin'], dir);
    const ok = verify('pae.bin');
    expect(ok.stdout).toContain('Signature Verified Successfully');
    expect(ok.status).toBe(0);
    writeFileSync(join(dir, 'other.bin'), pae(env.payloadType, text('{"hello":"world"}')));
    expect(verify('other.bin').status).not.toBe(0);
  });

  it('verifies an envelope signed by openssl pkeyutl -sign with a key generated by openssl', () => {
    const dir = tempDir();
    expect(openssl(['genpkey', '-algorithm', 'ed25519', '-out', 'ossl.key'], dir).status).toBe(0);
    expect(openssl(['pkey', '-in', 'ossl.key', '-pubout', '-out', 'ossl.pub'], dir).status).toBe(0);
    chmodSync(join(dir, 'ossl.key'), 0o600);
    const payload = text('{"signed":"by openssl"}');
    writeFileSync(join(dir, 'pae.bin'), pae(TYPE, payload));
    expect(openssl(['pkeyutl', '-sign', '-rawin', '-inkey', 'ossl.key', '-in', 'pae.bin', '-out', 'sig.bin'], dir).status).toBe(0);
    const publicKey = readPublicKey(join(dir, 'ossl.pub'));
    const sig = new Uint8Array(readFileSync(join(dir, 'sig.bin')));
    const env: DsseEnvelope = { payloadType: TYPE, payload: toBase64(payload), signatures: [{ keyid: publicKey.keyid, sig: toBase64(sig) }] };
    const lookup = (keyid: string) => (keyid === publicKey.keyid ? publicKey : undefined);
    expect(verifyEnvelope(env, lookup).payload).toEqual(payload);
    expect(verifyEnvelopeNoble(env, lookup).keyid).toBe(publicKey.keyid);
    // The OpenSSL-made key file is readable by Tessera and signs identically (Ed25519 is deterministic).
    const ours = readPrivateKey(join(dir, 'ossl.key'));
    expect(ours.keyid).toBe(publicKey.keyid);
    expect(ours.sign(pae(TYPE, payload))).toEqual(sig);
    expect(() => verifyEnvelope({ ...env, payload: toBase64(text('{"signed":"by someone"}')) }, lookup)).toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID' }));
  });
});

describe('trust store', () => {
  it('requires an existing folder unless asked to create it', () => {
    const dir = join(tempDir(), 'trust');
    expect(() => openTrustStore(dir)).toThrow(keyFileError('does not exist'));
    const store = openTrustStore(dir, { create: true });
    expect(store.dir).toBe(dir);
    expect(store.list()).toEqual([]);
    expect(store.revocations()).toEqual([]);
  });

  it('adds keys as <name>.pem, idempotently, naming them by the keyid unless told otherwise', () => {
    const store = openTrustStore(tempDir(), { create: true });
    const a = generateKeyPair();
    const b = generateKeyPair();
    const added = store.add(a.publicKeyPem);
    const stem = a.keyid.slice(3, 19);
    expect(added).toEqual({ keyid: a.keyid, name: stem, file: join(store.dir, `${stem}.pem`), state: 'trusted' });
    expect(readFileSync(added.file, 'utf8')).toBe(a.publicKeyPem);
    if (posix) expect(modeOf(added.file)).toBe(0o644);
    expect(store.add(a.publicKeyPem.replace(/\n/g, '\r\n'), 'another-name')).toEqual(added);
    expect(store.add(b.publicKeyPem, '../Acme Corp!.pem')).toMatchObject({ name: 'Acme-Corp', file: join(store.dir, 'Acme-Corp.pem') });
    expect(store.list().map((k) => k.keyid).sort()).toEqual([a.keyid, b.keyid].sort());
    expect(readdirSync(store.dir).sort()).toEqual(['Acme-Corp.pem', `${stem}.pem`].sort());
    expect(store.lookup(a.keyid)).toEqual({ state: 'trusted', publicKeyRaw: a.publicKeyRaw, name: stem });
    expect(store.lookup(generateKeyPair().keyid)).toEqual({ state: 'unknown' });
  });

  it('reads the KEY.pub that keygen writes as a trusted key, next to .pem files, and a key under two names once', () => {
    const dir = tempDir();
    const author = generateKeyPair();
    const other = generateKeyPair();
    writePrivateKey(join(dir, 'author'), author);
    writeFileSync(join(dir, 'other.pem'), other.publicKeyPem);
    writeFileSync(join(dir, 'same-author.pem'), author.publicKeyPem);
    const store = openTrustStore(dir);
    expect(store.lookup(author.keyid)).toMatchObject({ state: 'trusted', name: 'author' });
    expect(store.lookup(other.keyid)).toMatchObject({ state: 'trusted', name: 'other' });
    expect(store.list().map((k) => [k.name, k.keyid])).toEqual([['author', author.keyid], ['other', other.keyid]]);
  });

  it('refuses invalid keys and a name already used by another key', () => {
    const store = openTrustStore(tempDir(), { create: true });
    store.add(generateKeyPair().publicKeyPem, 'acme');
    expect(() => store.add(generateKeyPair().publicKeyPem, 'acme')).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED', message: expect.stringContaining('acme') }));
    expect(() => store.add(pem(rsa.publicKey, 'public'))).toThrow(keyFileError('RSA key'));
    expect(() => store.add(pem(p256.publicKey, 'public'))).toThrow(keyFileError('EC (prime256v1)'));
    expect(() => store.add(pem(p256.privateKey, 'private'))).toThrow(keyFileError('private key'));
    expect(() => store.add('/etc/passwd')).toThrow(keyFileError('PEM text'));
    expect(store.list()).toHaveLength(1);
  });

  it('revokes keys, including ones it has never seen, keeping the first reason', () => {
    let now = Date.parse('2026-03-01T12:00:00Z');
    const store = openTrustStore(tempDir(), { create: true, now: () => now });
    const seen = generateKeyPair();
    const unseen = generateKeyPair();
    store.add(seen.publicKeyPem, 'seen');
    store.revoke(seen.keyid, 'laptop stolen');
    now += 1000;
    store.revoke(unseen.keyid, 'pre-emptive');
    store.revoke(seen.keyid, 'second reason');
    expect(JSON.parse(readFileSync(join(store.dir, REVOKED_FILE), 'utf8'))).toEqual({
      revoked: [
        { keyid: seen.keyid, reason: 'laptop stolen', revoked_at: '2026-03-01T12:00:00.000Z' },
        { keyid: unseen.keyid, reason: 'pre-emptive', revoked_at: '2026-03-01T12:00:01.000Z' },
      ],
    });
    expect(store.lookup(seen.keyid)).toEqual({ state: 'revoked', reason: 'laptop stolen' });
    expect(store.list()).toEqual([expect.objectContaining({ keyid: seen.keyid, state: 'revoked', revoked_reason: 'laptop stolen' })]);
    expect(store.add(unseen.publicKeyPem)).toMatchObject({ state: 'revoked', revoked_reason: 'pre-emptive' });
    expect(store.lookup(unseen.keyid)).toEqual({ state: 'revoked', reason: 'pre-emptive' });
    expect(() => store.revoke('not-a-keyid', 'x')).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => store.revoke(generateKeyPair().keyid, '  ')).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(readdirSync(store.dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('sees keys and revocations written by another process, because it re-reads the folder', () => {
    const dir = tempDir();
    const reader = openTrustStore(dir);
    const writer = openTrustStore(dir);
    const key = generateKeyPair();
    writer.add(key.publicKeyPem, 'k');
    expect(reader.lookup(key.keyid).state).toBe('trusted');
    writer.revoke(key.keyid, 'rotated');
    expect(reader.lookup(key.keyid)).toEqual({ state: 'revoked', reason: 'rotated' });
  });

  it('reports malformed key files and revocation lists as KEY_FILE_INVALID naming the file', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'README.txt'), 'ignored: not a .pem');
    openTrustStore(dir);
    const cases: Array<[string, string, string]> = [
      ['bad.pem', 'garbage', 'not a PEM public key'],
      ['rsa.pem', pem(rsa.publicKey, 'public'), 'RSA key'],
      ['priv.pem', pem(p256.privateKey, 'private'), 'private key'],
    ];
    for (const [name, content, problem] of cases) {
      const file = join(dir, name);
      writeFileSync(file, content);
      expect(() => openTrustStore(dir)).toThrow(keyFileError(file));
      expect(() => openTrustStore(dir)).toThrow(keyFileError(problem));
      writeFileSync(file, generateKeyPair().publicKeyPem);
    }
    mkdirSync(join(dir, 'folder.pem'));
    expect(() => openTrustStore(dir)).toThrow(keyFileError(join(dir, 'folder.pem')));
  });

  it('refuses a corrupt revoked.json on every call and never overwrites it', () => {
    const dir = tempDir();
    const store = openTrustStore(dir);
    const key = generateKeyPair();
    store.add(key.publicKeyPem, 'k');
    const file = join(dir, REVOKED_FILE);
    const corrupt: Array<[string, string]> = [
      ['{"revoked": [', 'not JSON'],
      ['[]', 'expected {"revoked"'],
      ['{"revoked": [{"keyid": "b3:nothex", "reason": "x", "revoked_at": "2026-01-01T00:00:00Z"}]}', 'revoked[0].keyid'],
      [`{"revoked": [{"keyid": "${key.keyid}", "revoked_at": "2026-01-01T00:00:00Z"}]}`, 'revoked[0].reason'],
      [`{"revoked": [{"keyid": "${key.keyid}", "reason": "x", "revoked_at": "yesterday"}]}`, 'revoked[0].revoked_at'],
    ];
    for (const [content, problem] of corrupt) {
      writeFileSync(file, content);
      expect(() => store.lookup(key.keyid)).toThrow(keyFileError(file));
      expect(() => store.list()).toThrow(keyFileError(problem));
      expect(() => store.revoke(key.keyid, 'x')).toThrow(keyFileError(file));
      expect(readFileSync(file, 'utf8')).toBe(content);
      expect(() => openTrustStore(dir)).toThrow(keyFileError(file));
    }
  });

  it('combines folders in order, and a revocation in any of them wins', () => {
    const builtIn = openTrustStore(join(tempDir(), 'resources-trust'), { create: true });
    const user = openTrustStore(join(tempDir(), 'user-trust'), { create: true });
    const vendor = generateKeyPair();
    const local = generateKeyPair();
    const bad = generateKeyPair();
    builtIn.add(vendor.publicKeyPem, 'vendor');
    builtIn.add(bad.publicKeyPem, 'bad');
    user.add(local.publicKeyPem, 'local');
    user.add(vendor.publicKeyPem, 'vendor-copy');
    user.revoke(bad.keyid, 'compromised');
    const trust = combineTrustStores(builtIn, user);
    expect(trust.lookup(vendor.keyid)).toMatchObject({ state: 'trusted', name: 'vendor' });
    expect(trust.lookup(local.keyid)).toMatchObject({ state: 'trusted', name: 'local' });
    expect(trust.lookup(bad.keyid)).toEqual({ state: 'revoked', reason: 'compromised' });
    expect(builtIn.lookup(bad.keyid).state).toBe('trusted');
    expect(trust.list().map((k) => [k.name, k.state])).toEqual([
      ['bad', 'revoked'],
      ['vendor', 'trusted'],
      ['local', 'trusted'],
      ['vendor-copy', 'trusted'],
    ]);
    builtIn.revoke(local.keyid, 'revoked by the vendor');
    expect(trust.lookup(local.keyid)).toEqual({ state: 'revoked', reason: 'revoked by the vendor' });
    expect(trust.revocations().map((r) => r.keyid)).toEqual([local.keyid, bad.keyid]);
  });
});

describe('verifyTrusted', () => {
  function setup() {
    const store = openTrustStore(tempDir());
    const trusted = generateKeyPair();
    const revoked = generateKeyPair();
    store.add(trusted.publicKeyPem, 'publisher');
    store.add(revoked.publicKeyPem, 'old-publisher');
    store.revoke(revoked.keyid, 'key leaked');
    return { store, trusted, revoked };
  }

  it('returns the payload, type, keyid and name for a signature by a trusted key', () => {
    const { store, trusted } = setup();
    const result = verifyTrusted(signEnvelope(TYPE, text('{"ok":true}'), [trusted]), store);
    expect(result).toEqual({ payload: text('{"ok":true}'), payloadType: TYPE, keyid: trusted.keyid, name: 'publisher' });
  });

  it('refuses a valid signature by a revoked key with KEY_REVOKED naming the key and the reason', () => {
    const { store, revoked } = setup();
    const env = signEnvelope(TYPE, text('{}'), [revoked]);
    expect(verifyEnvelope(env, lookupFor(revoked)).keyid).toBe(revoked.keyid);
    expect(() => verifyTrusted(env, store)).toThrow(
      expect.objectContaining({ code: 'KEY_REVOKED', message: expect.stringMatching(new RegExp(`${revoked.keyid}.*key leaked`)) }),
    );
    const forged = { ...env, signatures: [{ keyid: revoked.keyid, sig: toBase64(new Uint8Array(64)) }] };
    expect(() => verifyTrusted(forged, store)).toThrow(expect.objectContaining({ code: 'KEY_REVOKED' }));
  });

  it('accepts an envelope also signed by a trusted key, attributing it to that key', () => {
    const { store, trusted, revoked } = setup();
    expect(verifyTrusted(signEnvelope(TYPE, text('{}'), [revoked, trusted]), store).keyid).toBe(trusted.keyid);
  });

  it('throws KEY_UNKNOWN naming the keyid for a key no folder trusts', () => {
    const { store } = setup();
    const stranger = generateKeyPair();
    expect(() => verifyTrusted(signEnvelope(TYPE, text('{}'), [stranger]), store)).toThrow(
      expect.objectContaining({ code: 'KEY_UNKNOWN', message: expect.stringContaining(stranger.keyid) }),
    );
  });

  it('throws SIGNATURE_INVALID for a tampered payload, type or signature, a relabelled keyid and a malformed envelope', () => {
    const { store, trusted } = setup();
    const stranger = generateKeyPair();
    const env = signEnvelope(TYPE, text('{"amount":1}'), [trusted]);
    const byStranger = signEnvelope(TYPE, text('{"amount":1}'), [stranger]);
    const sig = fromBase64(env.signatures[0]!.sig);
    sig[0] = sig[0]! ^ 0x80;
    const bad: unknown[] = [
      { ...env, payload: toBase64(text('{"amount":9}')) },
      { ...env, payloadType: 'application/vnd.other+json' },
      { ...env, signatures: [{ keyid: trusted.keyid, sig: toBase64(sig) }] },
      { ...byStranger, signatures: [{ keyid: trusted.keyid, sig: byStranger.signatures[0]!.sig }] },
      { ...env, payload: 'not base64!' },
      { ...env, signatures: [] },
      { payload: env.payload, signatures: env.signatures },
    ];
    for (const envelope of bad) {
      expect(() => verifyTrusted(envelope as DsseEnvelope, store)).toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID' }));
    }
  });

  it('verifies against combined folders, where the user folder can revoke a built-in key', () => {
    const builtIn = openTrustStore(tempDir());
    const user = openTrustStore(tempDir());
    const vendor = generateKeyPair();
    builtIn.add(vendor.publicKeyPem, 'vendor');
    const env = signEnvelope(TYPE, text('{}'), [vendor]);
    expect(verifyTrusted(env, combineTrustStores(builtIn, user)).name).toBe('vendor');
    user.revoke(vendor.keyid, 'distrusted locally');
    expect(() => verifyTrusted(env, combineTrustStores(builtIn, user))).toThrow(expect.objectContaining({ code: 'KEY_REVOKED', message: expect.stringContaining('distrusted locally') }));
    expect(existsSync(join(user.dir, REVOKED_FILE))).toBe(true);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
