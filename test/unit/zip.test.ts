/**
 * The bundle container (main/common/zip.ts): the deterministic writer, the strict reader, and the byte layout its
 * TSDoc specifies — checked against an independent builder written from that description, against golden bytes,
 * against python3's zipfile and unzip, and with every rejection case of the spec.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 as zlibCrc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TesseraError } from '../../main/common/errors.js';
import { MAX_ZIP_ENTRIES, ZipError, crc32, readZip, writeZip, zipNameProblem } from '../../main/common/zip.js';
import { tempDir } from '../helpers/tmp.js';

const utf8 = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

interface RawEntry {
  name: string | Uint8Array;
  data: Uint8Array;
  madeBy?: number;
  needed?: number;
  flags?: number;
  method?: number;
  time?: number;
  date?: number;
  crc?: number;
  size?: number;
  extra?: Uint8Array;
  comment?: Uint8Array;
  external?: number;
  /** Overrides for the local header only. */
  local?: { flags?: number; crc?: number; name?: string; needed?: number };
  /** Offset recorded in the directory, instead of the real one. */
  offset?: number;
  /** Bytes written before this entry's local header. */
  gapBefore?: number;
}

/**
 * An independent ZIP builder written from zip.ts's documented layout, every field overridable: with no overrides it
 * must give writeZip's bytes; with one it makes exactly the archive a rejection case needs.
 */
function rawZip(entries: RawEntry[], end: { count?: number; disk?: number; comment?: Uint8Array; gapBeforeDirectory?: number; afterDirectory?: number; trailing?: number; zip64Locator?: boolean } = {}): Uint8Array {
  const parts: number[] = [];
  const u16 = (n: number) => parts.push(n & 0xff, (n >>> 8) & 0xff);
  const u32 = (n: number) => parts.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  const bytes = (b: Uint8Array) => parts.push(...b);
  const nameOf = (n: string | Uint8Array) => (typeof n === 'string' ? utf8(n) : n);
  const offsets: number[] = [];
  for (const e of entries) {
    for (let i = 0; i < (e.gapBefore ?? 0); i++) parts.push(0);
    offsets.push(parts.length);
    const name = nameOf(e.local?.name ?? e.name);
    u32(0x04034b50);
    u16(e.local?.needed ?? e.needed ?? 20);
    u16(e.local?.flags ?? e.flags ?? 0x0800);
    u16(e.method ?? 0);
    u16(e.time ?? 0);
    u16(e.date ?? 0x21);
    u32(e.local?.crc ?? e.crc ?? zlibCrc32(e.data));
    u32(e.size ?? e.data.length);
    u32(e.size ?? e.data.length);
    u16(name.length);
    u16(e.extra?.length ?? 0);
    bytes(name);
    if (e.extra) bytes(e.extra);
    bytes(e.data);
  }
  for (let i = 0; i < (end.gapBeforeDirectory ?? 0); i++) parts.push(0);
  const directory = parts.length;
  entries.forEach((e, i) => {
    const name = nameOf(e.name);
    u32(0x02014b50);
    u16(e.madeBy ?? 0x0314);
    u16(e.needed ?? 20);
    u16(e.flags ?? 0x0800);
    u16(e.method ?? 0);
    u16(e.time ?? 0);
    u16(e.date ?? 0x21);
    u32(e.crc ?? zlibCrc32(e.data));
    u32(e.size ?? e.data.length);
    u32(e.size ?? e.data.length);
    u16(name.length);
    u16(e.extra?.length ?? 0);
    u16(e.comment?.length ?? 0);
    u16(0);
    u16(0);
    u32(e.external ?? 0x81a40000);
    u32(e.offset ?? offsets[i]!);
    bytes(name);
    if (e.extra) bytes(e.extra);
    if (e.comment) bytes(e.comment);
  });
  for (let i = 0; i < (end.afterDirectory ?? 0); i++) parts.push(0);
  const directorySize = parts.length - directory;
  if (end.zip64Locator) {
    u32(0x07064b50);
    u32(0);
    u32(0);
    u32(0);
    u32(1);
  }
  u32(0x06054b50);
  u16(end.disk ?? 0);
  u16(end.disk ?? 0);
  u16(end.count ?? entries.length);
  u16(end.count ?? entries.length);
  u32(directorySize);
  u32(directory);
  u16(end.comment?.length ?? 0);
  if (end.comment) bytes(end.comment);
  for (let i = 0; i < (end.trailing ?? 0); i++) parts.push(0);
  return new Uint8Array(parts);
}

const two: RawEntry[] = [
  { name: 'a.txt', data: utf8('hi\n') },
  { name: 'd/é.json', data: utf8('{}') },
];

/** readZip's error for `bytes`: it must be a ZipError with this code whose message contains `text`. */
function rejection(bytes: Uint8Array, code: 'BUNDLE_ZIP_INVALID' | 'BUNDLE_ENTRY_INVALID', text: string | RegExp, options?: { maxEntries?: number }): ZipError {
  let error: unknown;
  try {
    readZip(bytes, options);
  } catch (err) {
    error = err;
  }
  expect(error, 'the archive was accepted').toBeInstanceOf(ZipError);
  const e = error as ZipError;
  expect(e.code).toBe(code);
  if (typeof text === 'string') expect(e.message).toContain(text);
  else expect(e.message).toMatch(text);
  return e;
}

describe('zip: the one byte form', () => {
  it('writes the documented bytes: golden hex of a two-entry archive, equal to the independent builder', () => {
    const written = writeZip(two.map((e) => [e.name as string, e.data]));
    expect(hex(written)).toBe(
      '504b0304140000080000000021007a7a6fed030000000300000005000000612e74787468690a' +
        '504b03041400000800000000210043bfa6a3020000000200000009000000642fc3a92e6a736f6e7b7d' +
        '504b01021403140000080000000021007a7a6fed0300000003000000050000000000000000000000a48100000000612e747874' +
        '504b010214031400000800000000210043bfa6a30200000002000000090000000000000000000000a48126000000642fc3a92e6a736f6e' +
        '504b050600000000020002006a0000004f0000000000',
    );
    expect(hex(rawZip(two))).toBe(hex(written));
    expect(hex(writeZip([]))).toBe('504b0506' + '00'.repeat(18));
  });

  it('round-trips entries in their order, and re-serializing what it read gives the same bytes', () => {
    const entries: Array<[string, Uint8Array]> = [
      ['z.bin', new Uint8Array([0, 1, 2, 255])],
      ['a/b/c.txt', utf8('nested')],
      ['empty', new Uint8Array(0)],
      ['ünï/cödé 名前.json', utf8('{"x":1}')],
    ];
    const zip = writeZip(entries);
    const read = readZip(zip);
    expect([...read]).toEqual(entries);
    expect(hex(writeZip(read))).toBe(hex(zip));
    expect(readZip(writeZip([])).size).toBe(0);
  });

  it('computes the CRC-32 zlib computes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => crc32(bytes) === zlibCrc32(bytes)));
  });

  it('round-trips random names and contents (property)', () => {
    const name = fc
      .array(fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme' }), { minLength: 1, maxLength: 4 })
      .map((segments) => segments.join('/'))
      .filter((n) => zipNameProblem(n) === null);
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(name, fc.uint8Array({ maxLength: 300 })), { selector: ([n]) => n, maxLength: 12 }), (entries) => {
        const zip = writeZip(entries);
        const read = readZip(zip);
        expect([...read]).toEqual(entries);
        expect(hex(writeZip(read))).toBe(hex(zip));
      }),
      { numRuns: 200 },
    );
  });

  it('rejects every single changed byte of random archives (property)', () => {
    const entries = fc.uniqueArray(fc.tuple(fc.stringMatching(/^[a-z]{1,8}(\/[a-z0-9]{1,8}(\.[a-z]{1,3})?)?$/), fc.uint8Array({ maxLength: 64 })), { selector: ([n]) => n, minLength: 1, maxLength: 5 });
    fc.assert(
      fc.property(entries, fc.nat(), fc.integer({ min: 1, max: 255 }), (list, pick, xor) => {
        const zip = writeZip(list);
        const at = pick % zip.length;
        zip[at] = zip[at]! ^ xor;
        expect(() => readZip(zip), `byte ${at} ^ ${xor}`).toThrow(ZipError);
      }),
      { numRuns: 1000 },
    );
  });

  it('rejects each flip of each byte of one archive, naming an offset inside the archive', () => {
    const zip = writeZip(two.map((e) => [e.name as string, e.data]));
    for (let at = 0; at < zip.length; at++) {
      for (const xor of [0x01, 0x80]) {
        const copy = zip.slice();
        copy[at] = copy[at]! ^ xor;
        let error: unknown;
        try {
          readZip(copy);
        } catch (err) {
          error = err;
        }
        expect(error, `byte ${at} ^ ${xor}`).toBeInstanceOf(ZipError);
        expect((error as ZipError).offset).toBeGreaterThanOrEqual(0);
        expect((error as ZipError).offset).toBeLessThanOrEqual(zip.length);
      }
    }
  });

  it('is read by python3 zipfile and unzip as an ordinary ZIP, names and contents intact', () => {
    const dir = tempDir('tessera-zip-');
    const path = join(dir, 'a.zip');
    writeFileSync(path, writeZip([...two.map((e) => [e.name as string, e.data] as const), ['x/y/z.bin', new Uint8Array([0, 255, 10])]]));
    const py = spawnSync('python3', ['-c', 'import sys, zipfile, json; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(json.dumps([[i.filename, z.read(i).hex()] for i in z.infolist()]))', path], { encoding: 'utf8' });
    expect(py.status, py.stderr).toBe(0);
    expect(JSON.parse(py.stdout)).toEqual([
      ['a.txt', hex(utf8('hi\n'))],
      ['d/é.json', hex(utf8('{}'))],
      ['x/y/z.bin', '00ff0a'],
    ]);
    const unzip = spawnSync('unzip', ['-o', '-q', path, '-d', join(dir, 'out')], { encoding: 'utf8' });
    expect(unzip.status, unzip.stderr).toBe(0);
    expect(readFileSync(join(dir, 'out', 'd', 'é.json'), 'utf8')).toBe('{}');
  });
});

describe('zip: the writer refuses what the reader would', () => {
  it('refuses unsafe names, duplicates and too many entries with VALIDATION_FAILED', () => {
    for (const name of ['', '../x', 'a/../b', '/abs', 'a\\b', 'a\u0000b', 'tab\there', 'del\u007f', 'C:/x', 'dir/', 'a//b', './a', '\ufeffbom', 'bad\ud800']) {
      expect(() => writeZip([[name, new Uint8Array(1)]]), JSON.stringify(name)).toThrow(TesseraError);
      expect(zipNameProblem(name), JSON.stringify(name)).not.toBeNull();
    }
    expect(() => writeZip([['a', new Uint8Array(1)], ['a', new Uint8Array(2)]])).toThrow('given twice');
    const many = Array.from({ length: MAX_ZIP_ENTRIES + 1 }, (_, i) => [`f${i}`, new Uint8Array(0)] as const);
    expect(() => writeZip(many)).toThrow(`at most ${MAX_ZIP_ENTRIES} entries`);
    try {
      writeZip([['../x', new Uint8Array(1)]]);
    } catch (err) {
      expect((err as TesseraError).code).toBe('VALIDATION_FAILED');
    }
  });
});

describe('zip: the reader rejects everything but the one form, saying where', () => {
  const [a, b] = two as [RawEntry, RawEntry];

  it('compression, encryption, data descriptors', () => {
    const e = rejection(rawZip([a, { ...b, method: 8 }]), 'BUNDLE_ZIP_INVALID', 'compression method 8; entries must be stored');
    expect(e).toMatchObject({ entry: 'd/é.json', phase: 'structure' });
    rejection(rawZip([{ ...a, flags: 0x0801, local: { flags: 0x0801 } }]), 'BUNDLE_ZIP_INVALID', 'encrypted');
    rejection(rawZip([{ ...a, flags: 0x0808, local: { flags: 0x0808 } }]), 'BUNDLE_ZIP_INVALID', 'data descriptor');
    rejection(rawZip([{ ...a, flags: 0 }]), 'BUNDLE_ZIP_INVALID', 'general purpose flags field');
  });

  it('real archives of other writers: python3 deflate, streaming (data descriptor), an archive comment', () => {
    const dir = tempDir('tessera-zip-py-');
    const script = [
      'import os, sys, zipfile',
      'os.chdir(sys.argv[1])',
      "z = zipfile.ZipFile('deflated.zip', 'w', zipfile.ZIP_DEFLATED); z.writestr('a.txt', 'hello ' * 50); z.close()",
      "f = open('streamed.zip', 'wb')",
      'class S:',
      '  def write(self, b): return f.write(b)',
      '  def flush(self): f.flush()',
      "z = zipfile.ZipFile(S(), 'w'); w = z.open('a.txt', 'w'); w.write(b'hi'); w.close(); z.close(); f.close()",
      "z = zipfile.ZipFile('comment.zip', 'w'); z.writestr('a.txt', 'hi'); z.comment = b'note'; z.close()",
      "z = zipfile.ZipFile('plain.zip', 'w'); z.writestr(zipfile.ZipInfo('a.txt', (1980, 1, 1, 0, 0, 0)), 'hi'); z.close()",
    ].join('\n');
    const r = spawnSync('python3', ['-c', script, dir], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const file = (name: string) => new Uint8Array(readFileSync(join(dir, name)));
    rejection(file('deflated.zip'), 'BUNDLE_ZIP_INVALID', 'compression method 8');
    rejection(file('streamed.zip'), 'BUNDLE_ZIP_INVALID', 'data descriptor');
    rejection(file('comment.zip'), 'BUNDLE_ZIP_INVALID', '4-byte comment; comments are not allowed');
    // Python's own stored entries differ in flags, version made by and attributes: still not the one form.
    rejection(file('plain.zip'), 'BUNDLE_ZIP_INVALID', /central directory record 0 \(offset \d+\)/);
  });

  it('ZIP64: markers in the end record, a locator, version needed 4.5, sizes 0xffffffff', () => {
    rejection(rawZip([a], { count: 0xffff }), 'BUNDLE_ZIP_INVALID', 'ZIP64 markers');
    rejection(rawZip([a], { zip64Locator: true }), 'BUNDLE_ZIP_INVALID', 'ZIP64 end-of-central-directory locator');
    rejection(rawZip([{ ...a, needed: 45 }]), 'BUNDLE_ZIP_INVALID', 'asks for ZIP64');
    rejection(rawZip([{ ...a, extra: new Uint8Array([1, 0, 0, 0]) }]), 'BUNDLE_ZIP_INVALID', '4-byte extra field');
  });

  it('extra fields, comments, attributes, times', () => {
    rejection(rawZip([a, { ...b, extra: new Uint8Array([0x55, 0x54, 1, 0, 0]) }]), 'BUNDLE_ZIP_INVALID', 'extra fields are not allowed');
    rejection(rawZip([{ ...a, comment: utf8('c') }]), 'BUNDLE_ZIP_INVALID', '1-byte file comment');
    rejection(rawZip([a], { comment: utf8('hello') }), 'BUNDLE_ZIP_INVALID', '5-byte comment');
    rejection(rawZip([{ ...a, external: 0 }]), 'BUNDLE_ZIP_INVALID', 'external attributes 0x00000000, not 0x81a40000');
    rejection(rawZip([{ ...a, madeBy: 0x0014 }]), 'BUNDLE_ZIP_INVALID', 'version made by is 0x0014, not 0x0314');
    rejection(rawZip([{ ...a, time: 0x6000 }]), 'BUNDLE_ZIP_INVALID', 'DOS time');
    rejection(rawZip([{ ...a, date: 0x5a21 }]), 'BUNDLE_ZIP_INVALID', 'DOS date');
    rejection(rawZip([a], { disk: 1 }), 'BUNDLE_ZIP_INVALID', 'multi-disk');
  });

  it('gaps and overlaps between entries and around the directory', () => {
    const gap = rejection(rawZip([a, { ...b, gapBefore: 3 }]), 'BUNDLE_ZIP_INVALID', 'leaving a gap of 3 bytes after offset 38');
    expect(gap.entry).toBe('d/é.json');
    rejection(rawZip([{ ...a, gapBefore: 1 }]), 'BUNDLE_ZIP_INVALID', 'gap of 1 bytes after offset 0');
    rejection(rawZip([a, { ...b, offset: 0 }]), 'BUNDLE_ZIP_INVALID', 'overlaps the previous entry, which ends at offset 38');
    rejection(rawZip([a, b], { gapBeforeDirectory: 2 }), 'BUNDLE_ZIP_INVALID', '2 bytes between the last entry');
    rejection(rawZip([a, b], { afterDirectory: 4 }), 'BUNDLE_ZIP_INVALID', '4 bytes after the last central directory record');
  });

  it('a local header that disagrees with the central directory', () => {
    rejection(rawZip([{ ...a, local: { crc: 1 } }]), 'BUNDLE_ZIP_INVALID', 'the local header at offset 0: the CRC-32 is 0x00000001 but the central directory');
    rejection(rawZip([a, { ...b, local: { name: 'd/e.jsonx' } }]), 'BUNDLE_ZIP_INVALID', 'the name differs from the central directory');
    rejection(rawZip([{ ...a, local: { needed: 10 } }]), 'BUNDLE_ZIP_INVALID', 'version needed is 0x000a');
  });

  it('CRC mismatches (both headers agree, the data does not)', () => {
    const e = rejection(rawZip([a, { ...b, crc: 0x12345678 }]), 'BUNDLE_ZIP_INVALID', 'fails its CRC-32 check');
    expect(e).toMatchObject({ entry: 'd/é.json', phase: 'data', offset: 38 + 30 + utf8('d/é.json').length });
  });

  it('names: duplicates, "..", absolute, backslashes, control characters, drive letters, directories, not UTF-8', () => {
    const dup = rejection(rawZip([a, { ...a, data: utf8('other') }]), 'BUNDLE_ENTRY_INVALID', '"a.txt" appears twice');
    expect(dup.phase).toBe('names');
    for (const [name, why] of [
      ['../etc/passwd', '".." segment'],
      ['a/../../b', '".." segment'],
      ['/etc/passwd', 'absolute path'],
      ['a\\b.txt', 'backslash'],
      ['a\u0007b', 'control character'],
      ['a\nb', 'control character'],
      ['C:/windows', 'drive letter'],
      ['dir/', 'empty segment'],
      ['a//b', 'empty segment'],
      ['\ufeffa', 'byte order mark'],
    ] as const) {
      const e = rejection(rawZip([a, { ...b, name }]), 'BUNDLE_ENTRY_INVALID', why);
      expect(e.entry).toBe(name);
    }
    rejection(rawZip([{ ...a, name: new Uint8Array([0x61, 0xff]) }]), 'BUNDLE_ZIP_INVALID', 'not UTF-8');
  });

  it('trailing bytes, truncation, not a ZIP, too many entries', () => {
    rejection(rawZip([a], { trailing: 3 }), 'BUNDLE_ZIP_INVALID', '3 bytes follow the end record');
    const zip = rawZip([a, b]);
    rejection(zip.subarray(0, zip.length - 1), 'BUNDLE_ZIP_INVALID', 'does not end with a ZIP end-of-central-directory record');
    rejection(new Uint8Array(10), 'BUNDLE_ZIP_INVALID', 'too short');
    rejection(utf8('%PDF-1.7 this is not a zip at all, really not'), 'BUNDLE_ZIP_INVALID', 'not a ZIP file');
    rejection(zip, 'BUNDLE_ZIP_INVALID', '2 entries is over the 1-entry limit', { maxEntries: 1 });
    rejection(rawZip([a, b], { count: 3 }), 'BUNDLE_ZIP_INVALID', /central directory record 2 .* runs past/);
  });
});
