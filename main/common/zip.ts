/**
 * The container of offline bundles: a deterministic writer and a strict reader of one fully specified form of ZIP
 * (PKWARE APPNOTE 6.3.x), so that a bundle signed today verifies with any later release of Tessera, and an
 * independent verifier can be written from this description alone. Standard tools (`unzip -l`, `zipinfo`,
 * `python3 -m zipfile -l`) read it as an ordinary ZIP.
 *
 * ## Byte layout (all integers little-endian; nothing else is allowed)
 * ```
 * for each entry, in order, with no gap:
 *   local file header, 30 bytes + name
 *     0  u32 0x04034b50  signature
 *     4  u16 20          version needed to extract (2.0)
 *     6  u16 0x0800      general purpose flags: only bit 11 (name is UTF-8)
 *     8  u16 0           compression method: stored
 *    10  u16 0x0000      DOS time 00:00:00
 *    12  u16 0x0021      DOS date 1980-01-01
 *    14  u32 crc         CRC-32 (ISO-HDLC, as zlib and PNG) of the data
 *    18  u32 size        compressed size = size
 *    22  u32 size        uncompressed size
 *    26  u16 n           name length in bytes
 *    28  u16 0           extra field length
 *    30  n bytes         name, UTF-8
 *   data, size bytes, as is
 * central directory, one record per entry in the same order, 46 bytes + name each:
 *     0  u32 0x02014b50  signature
 *     4  u16 0x0314      version made by: Unix (3), spec 2.0 (20); Unix hosts avoid unzip's OEM name conversion
 *     6  u16 20          version needed
 *     8  u16 0x0800      flags
 *    10  u16 0           method
 *    12  u16 0x0000      time
 *    14  u16 0x0021      date
 *    16  u32 crc, 20 u32 size, 24 u32 size
 *    28  u16 n           name length
 *    30  u16 0           extra field length
 *    32  u16 0           comment length
 *    34  u16 0           disk number start
 *    36  u16 0           internal attributes
 *    38  u32 0x81a40000  external attributes: Unix mode 0100644 (regular file, rw-r--r--) << 16
 *    42  u32 offset      offset of the entry's local header
 *    46  n bytes         name, the same bytes as in the local header
 * end of central directory, 22 bytes, the last bytes of the file:
 *     0  u32 0x06054b50  signature
 *     4  u16 0, 6 u16 0  this disk, disk of the directory
 *     8  u16 count, 10 u16 count   entries on this disk, entries in total
 *    12  u32 size        central directory size in bytes
 *    16  u32 offset      central directory offset (= end of the last entry's data)
 *    20  u16 0           comment length
 * ```
 * Names are 1 to 65535 bytes of UTF-8 without a byte order mark: relative paths with `/` separators; no empty,
 * `.` or `..` segment (so no directory entries and no leading `/`), no `\`, no drive letter (`C:`), no control
 * characters (U+0000–U+001F, U+007F–U+009F); each name once. At most 65534 entries, each entry and the whole
 * file under 4 GiB (no ZIP64). No compression, encryption, data descriptors, extra fields or comments.
 *
 * Since every field is fixed or derived from the entries, an archive has exactly one byte form:
 * {@link readZip} checks every field and then that {@link writeZip} of what it read gives the same bytes.
 *
 * Errors are {@link ZipError}s with a BUNDLE_* code, the offset and the entry they concern.
 *
 * Pure module: no node: imports; runs in the renderer.
 */
import { TesseraError } from './errors.js';
import type { ErrorCode } from './errors.js';

const LOCAL_SIGNATURE = 0x04034b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const END_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const LOCAL_HEADER = 30;
const CENTRAL_HEADER = 46;
const END_RECORD = 22;
/** Version needed to extract: 2.0. */
const VERSION = 20;
/** Version made by: Unix (high byte 3), spec 2.0; Info-ZIP converts names of MS-DOS-made entries from CP437. */
const MADE_BY = 0x0314;
/** External attributes: Unix mode 0100644 (a regular file, rw-r--r--) in the high 16 bits. */
const EXTERNAL_ATTRIBUTES = 0o100644 * 0x10000;
/** General purpose flags: bit 11, the name is UTF-8. */
const FLAGS = 0x0800;
/** 00:00:00 and 1980-01-01, the earliest DOS date: the same bytes in every time zone. */
const DOS_TIME = 0x0000;
const DOS_DATE = 0x0021;
/** Most entries: 0xffff in the end record means ZIP64. */
export const MAX_ZIP_ENTRIES = 0xfffe;
/** Largest entry, directory offset or file: 0xffffffff means ZIP64. */
const MAX_U32 = 0xfffffffe;

/**
 * A ZIP that is not in the one accepted form. `code` is BUNDLE_ZIP_INVALID (structure, data) or BUNDLE_ENTRY_INVALID
 * (an unsafe or duplicate name); `entry` the entry's name when the problem is one entry's; `offset` the byte where
 * the problem is; `phase` which stage of {@link readZip} found it (structure, then names, then data).
 */
export class ZipError extends TesseraError {
  constructor(
    code: Extract<ErrorCode, 'BUNDLE_ZIP_INVALID' | 'BUNDLE_ENTRY_INVALID'>,
    readonly phase: 'structure' | 'names' | 'data',
    readonly offset: number,
    readonly entry: string | null,
    message: string,
  ) {
    super(code, message, { details: { offset, entry } });
  }
}

/** Entries in archive order: name → data. A Map keeps the order and makes a name unique. */
export type ZipEntries = Iterable<readonly [name: string, data: Uint8Array]>;

const encoder = new TextEncoder();
/** Decodes without dropping a leading U+FEFF, so decoding and encoding again gives the same bytes. */
const exactDecoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** Why `name` cannot be an entry name (see the module doc), or null when it can. */
export function zipNameProblem(name: string): string | null {
  if (name === '') return 'the name is empty';
  if (exactDecoder.decode(encoder.encode(name)) !== name) return 'the name is not well-formed Unicode';
  if (encoder.encode(name).length > 0xffff) return 'the name is longer than 65535 bytes';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return 'the name contains a control character';
  if (name.includes('\\')) return 'the name contains a backslash';
  if (name.startsWith('/')) return 'the name is an absolute path';
  if (/^[A-Za-z]:/.test(name)) return 'the name starts with a drive letter';
  if (name.startsWith('\ufeff')) return 'the name starts with a byte order mark';
  const segments = name.split('/');
  if (segments.includes('..')) return 'the name has a ".." segment';
  if (segments.includes('.')) return 'the name has a "." segment';
  if (segments.includes('')) return 'the name has an empty segment (a directory entry, or "//")';
  return null;
}

/**
 * The archive of `entries`, in their order, in the form the module doc specifies: the same entries always give
 * the same bytes.
 * @throws TesseraError VALIDATION_FAILED for a name {@link zipNameProblem} refuses, a name given twice, more than
 *   {@link MAX_ZIP_ENTRIES} entries or an archive of 4 GiB or more.
 */
export function writeZip(entries: ZipEntries): Uint8Array {
  const list: Array<{ name: Uint8Array; data: Uint8Array; crc: number; offset: number }> = [];
  const seen = new Set<string>();
  let offset = 0;
  let directorySize = 0;
  for (const [name, data] of entries) {
    const problem = zipNameProblem(name);
    if (problem !== null) throw new TesseraError('VALIDATION_FAILED', `ZIP entry ${JSON.stringify(name)}: ${problem}.`);
    if (seen.has(name)) throw new TesseraError('VALIDATION_FAILED', `ZIP entry ${JSON.stringify(name)} is given twice.`);
    seen.add(name);
    const nameBytes = encoder.encode(name);
    list.push({ name: nameBytes, data, crc: crc32(data), offset });
    offset += LOCAL_HEADER + nameBytes.length + data.length;
    directorySize += CENTRAL_HEADER + nameBytes.length;
    if (data.length > MAX_U32 || offset + directorySize + END_RECORD > MAX_U32) throw new TesseraError('VALIDATION_FAILED', 'A ZIP archive must stay under 4 GiB (ZIP64 is not used).');
  }
  if (list.length > MAX_ZIP_ENTRIES) throw new TesseraError('VALIDATION_FAILED', `A ZIP archive holds at most ${MAX_ZIP_ENTRIES} entries, not ${list.length}.`);
  const out = new Uint8Array(offset + directorySize + END_RECORD);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const e of list) {
    writeHeader(view, at, LOCAL_SIGNATURE, e);
    out.set(e.name, at + LOCAL_HEADER);
    out.set(e.data, at + LOCAL_HEADER + e.name.length);
    at += LOCAL_HEADER + e.name.length + e.data.length;
  }
  for (const e of list) {
    writeHeader(view, at, CENTRAL_SIGNATURE, e);
    out.set(e.name, at + CENTRAL_HEADER);
    at += CENTRAL_HEADER + e.name.length;
  }
  view.setUint32(at, END_SIGNATURE, true);
  view.setUint16(at + 8, list.length, true);
  view.setUint16(at + 10, list.length, true);
  view.setUint32(at + 12, directorySize, true);
  view.setUint32(at + 16, offset, true);
  return out;
}

/** A local header (30 bytes) or central directory record (46 bytes), without the name; zero fields stay zero. */
function writeHeader(view: DataView, at: number, signature: number, e: { name: Uint8Array; data: Uint8Array; crc: number; offset: number }): void {
  const central = signature === CENTRAL_SIGNATURE ? 2 : 0;
  view.setUint32(at, signature, true);
  if (central) view.setUint16(at + 4, MADE_BY, true);
  view.setUint16(at + central + 4, VERSION, true);
  view.setUint16(at + central + 6, FLAGS, true);
  view.setUint16(at + central + 10, DOS_TIME, true);
  view.setUint16(at + central + 12, DOS_DATE, true);
  view.setUint32(at + central + 14, e.crc, true);
  view.setUint32(at + central + 18, e.data.length, true);
  view.setUint32(at + central + 22, e.data.length, true);
  view.setUint16(at + central + 26, e.name.length, true);
  if (central) {
    view.setUint32(at + 38, EXTERNAL_ATTRIBUTES, true);
    view.setUint32(at + 42, e.offset, true);
  }
}

/** Where an entry is, as {@link readZipDirectory} found it. */
export interface ZipDirectoryEntry {
  name: string;
  crc: number;
  size: number;
  /** Offset of the local header. */
  headerOffset: number;
  /** Offset of the data. */
  dataOffset: number;
  /** Offset of the central directory record. */
  recordOffset: number;
}

/** Limits of {@link readZip} and {@link readZipDirectory}. */
export interface ReadZipOptions {
  /** Refuse archives with more entries than this (checked before any record is read). Default {@link MAX_ZIP_ENTRIES}. */
  maxEntries?: number;
}

/**
 * Reads an archive strictly (every rule of the module doc), in three stages: {@link readZipDirectory} (structure),
 * {@link checkZipNames} (names), {@link readZipData} (CRC-32s and the round trip).
 * @throws ZipError at the first problem, with its code, offset and entry.
 */
export function readZip(bytes: Uint8Array, options: ReadZipOptions = {}): Map<string, Uint8Array> {
  const directory = readZipDirectory(bytes, options);
  checkZipNames(directory);
  return readZipData(bytes, directory);
}

const u16 = (b: Uint8Array, at: number) => b[at]! | (b[at + 1]! << 8);
const u32 = (b: Uint8Array, at: number) => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
const hex = (n: number, digits = 4) => `0x${n.toString(16).padStart(digits, '0')}`;

/**
 * The first stage of reading: the structure — the end record, every central directory record and local header,
 * each field the fixed value or agreeing with the other copy, entries back to back from offset 0 up to the
 * directory. Names are checked by {@link checkZipNames}, data and CRC-32s by {@link readZipData}.
 * @throws ZipError (phase `structure`) at the first problem, naming the offset and, when it has one, the entry.
 */
export function readZipDirectory(bytes: Uint8Array, options: ReadZipOptions = {}): ZipDirectoryEntry[] {
  const bad = (offset: number, entry: string | null, message: string): never => {
    throw new ZipError('BUNDLE_ZIP_INVALID', 'structure', offset, entry, message);
  };
  const end = bytes.length - END_RECORD;
  if (end < 0) bad(0, null, `${bytes.length} bytes is too short to be a ZIP file (its end record alone is ${END_RECORD} bytes)`);
  if (u32(bytes, end) !== END_SIGNATURE) {
    const found = lastEndSignature(bytes, end);
    if (found < 0) bad(end, null, 'the file does not end with a ZIP end-of-central-directory record: not a ZIP file, or truncated');
    const comment = u16(bytes, found + 20);
    if (comment > 0 && found + END_RECORD + comment === bytes.length) bad(found + 20, null, `the end record at offset ${found} has a ${comment}-byte comment; comments are not allowed`);
    bad(found + END_RECORD, null, `${bytes.length - found - END_RECORD} bytes follow the end record at offset ${found}; nothing may follow it`);
  }
  if (end >= 20 && u32(bytes, end - 20) === ZIP64_LOCATOR_SIGNATURE) bad(end - 20, null, `a ZIP64 end-of-central-directory locator at offset ${end - 20}: ZIP64 is not allowed`);
  const count = u16(bytes, end + 10);
  const directorySize = u32(bytes, end + 12);
  const directoryOffset = u32(bytes, end + 16);
  if (count === 0xffff || directorySize === 0xffffffff || directoryOffset === 0xffffffff) bad(end, null, `the end record at offset ${end} has ZIP64 markers (0xffff / 0xffffffff): ZIP64 is not allowed`);
  if (u16(bytes, end + 4) !== 0 || u16(bytes, end + 6) !== 0 || u16(bytes, end + 8) !== count) bad(end + 4, null, `the end record at offset ${end} describes a multi-disk archive (disk fields must be 0, 0 and the entry count twice)`);
  if (u16(bytes, end + 20) !== 0) bad(end + 20, null, `the end record at offset ${end} declares a ${u16(bytes, end + 20)}-byte comment; comments are not allowed`);
  const maxEntries = options.maxEntries ?? MAX_ZIP_ENTRIES;
  if (count > maxEntries) bad(end + 10, null, `${count} entries is over the ${maxEntries}-entry limit`);
  if (directoryOffset + directorySize !== end) bad(end + 12, null, `the central directory (offset ${directoryOffset}, ${directorySize} bytes) does not end where the end record starts (offset ${end}): a gap or an overlap`);

  const names = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const entries: ZipDirectoryEntry[] = [];
  let record = directoryOffset;
  let next = 0;
  for (let i = 0; i < count; i++) {
    const where = `central directory record ${i} (offset ${record})`;
    if (record + CENTRAL_HEADER > end) bad(record, null, `${where} runs past the central directory`);
    if (u32(bytes, record) !== CENTRAL_SIGNATURE) bad(record, null, `${where} does not start with the signature ${hex(CENTRAL_SIGNATURE, 8)}`);
    const nameLength = u16(bytes, record + 28);
    const extraLength = u16(bytes, record + 30);
    const commentLength = u16(bytes, record + 32);
    if (record + CENTRAL_HEADER + nameLength + extraLength + commentLength > end) bad(record + 28, null, `${where} runs past the central directory`);
    const nameBytes = bytes.subarray(record + CENTRAL_HEADER, record + CENTRAL_HEADER + nameLength);
    let name: string;
    try {
      name = names.decode(nameBytes);
    } catch {
      return bad(record + CENTRAL_HEADER, null, `the name in ${where} is not UTF-8`);
    }
    const entryBad = (offset: number, message: string) => bad(offset, name, `${JSON.stringify(name)}, ${message}`);
    const flags = u16(bytes, record + 8);
    const method = u16(bytes, record + 10);
    const crc = u32(bytes, record + 16);
    const size = u32(bytes, record + 24);
    const fixed = (at: number, value: number, expected: number, field: string) => {
      if (value !== expected) entryBad(at, `${where}: ${field} is ${hex(value)}, not ${hex(expected)}`);
    };
    if (method !== 0) entryBad(record + 10, `${where}: compression method ${method}; entries must be stored (method 0)`);
    if (flags & 0x0041) entryBad(record + 8, `${where}: the entry is encrypted (flags ${hex(flags)}); encryption is not allowed`);
    if (flags & 0x0008) entryBad(record + 8, `${where}: the entry uses a data descriptor (flags ${hex(flags)}); sizes and CRC-32 must be in the headers`);
    fixed(record + 8, flags, FLAGS, 'the general purpose flags field (only bit 11, UTF-8 names, may be set, and must be)');
    fixed(record + 4, u16(bytes, record + 4), MADE_BY, 'version made by');
    if (u16(bytes, record + 6) >= 45) entryBad(record + 6, `${where}: version needed ${u16(bytes, record + 6)} asks for ZIP64 or later features, which are not allowed`);
    fixed(record + 6, u16(bytes, record + 6), VERSION, 'version needed to extract');
    fixed(record + 12, u16(bytes, record + 12), DOS_TIME, 'the DOS time');
    fixed(record + 14, u16(bytes, record + 14), DOS_DATE, 'the DOS date');
    if (u32(bytes, record + 20) !== size) entryBad(record + 20, `${where}: compressed size ${u32(bytes, record + 20)} differs from size ${size}; stored entries have one size`);
    if (size === 0xffffffff) entryBad(record + 24, `${where}: ZIP64 size marker 0xffffffff; ZIP64 is not allowed`);
    if (extraLength !== 0) entryBad(record + 30, `${where}: a ${extraLength}-byte extra field (ZIP64, timestamps, attributes); extra fields are not allowed`);
    if (commentLength !== 0) entryBad(record + 32, `${where}: a ${commentLength}-byte file comment; comments are not allowed`);
    fixed(record + 34, u16(bytes, record + 34), 0, 'the disk number');
    fixed(record + 36, u16(bytes, record + 36), 0, 'the internal attributes field');
    if (u32(bytes, record + 38) !== EXTERNAL_ATTRIBUTES) entryBad(record + 38, `${where}: external attributes ${hex(u32(bytes, record + 38), 8)}, not ${hex(EXTERNAL_ATTRIBUTES, 8)}`);
    const header = u32(bytes, record + 42);
    if (header > next) entryBad(record + 42, `${where}: the local header is at offset ${header}, leaving a gap of ${header - next} bytes after offset ${next}`);
    if (header < next) entryBad(record + 42, `${where}: the local header at offset ${header} overlaps the previous entry, which ends at offset ${next}`);

    // The local header: the same fields as the directory record, in its own place.
    const local = `the local header at offset ${header}`;
    if (header + LOCAL_HEADER + nameLength > directoryOffset) entryBad(header, `${local} runs into the central directory`);
    if (u32(bytes, header) !== LOCAL_SIGNATURE) entryBad(header, `${local} does not start with the signature ${hex(LOCAL_SIGNATURE, 8)}`);
    const same = (field: string, at: number, width: 2 | 4, expected: number) => {
      const value = width === 2 ? u16(bytes, at) : u32(bytes, at);
      if (value !== expected) entryBad(at, `${local}: ${field} is ${hex(value, width * 2)} but the central directory (and the fixed form) says ${hex(expected, width * 2)}`);
    };
    same('version needed', header + 4, 2, VERSION);
    same('the flags', header + 6, 2, FLAGS);
    same('the method', header + 8, 2, 0);
    same('the DOS time', header + 10, 2, DOS_TIME);
    same('the DOS date', header + 12, 2, DOS_DATE);
    same('the CRC-32', header + 14, 4, crc);
    same('the compressed size', header + 18, 4, size);
    same('the size', header + 22, 4, size);
    same('the name length', header + 26, 2, nameLength);
    same('the extra field length', header + 28, 2, 0);
    const localName = bytes.subarray(header + LOCAL_HEADER, header + LOCAL_HEADER + nameLength);
    const differs = localName.findIndex((b, j) => b !== nameBytes[j]);
    if (differs >= 0) entryBad(header + LOCAL_HEADER + differs, `${local}: the name differs from the central directory's at byte ${differs} of the name`);
    const dataOffset = header + LOCAL_HEADER + nameLength;
    if (dataOffset + size > directoryOffset) entryBad(dataOffset, `${size} bytes of data from offset ${dataOffset} run into the central directory (offset ${directoryOffset})`);
    entries.push({ name, crc, size, headerOffset: header, dataOffset, recordOffset: record });
    next = dataOffset + size;
    record += CENTRAL_HEADER + nameLength;
  }
  if (record !== end) bad(record, null, `${end - record} bytes after the last central directory record (offset ${record}) before the end record`);
  if (next !== directoryOffset) bad(next, null, `${directoryOffset - next} bytes between the last entry's data (ends at offset ${next}) and the central directory (offset ${directoryOffset})`);

  return entries;
}

/**
 * The second stage of reading: every name is safe ({@link zipNameProblem}) and appears once.
 * @throws ZipError BUNDLE_ENTRY_INVALID (phase `names`) naming the entry.
 */
export function checkZipNames(directory: readonly ZipDirectoryEntry[]): void {
  const seen = new Set<string>();
  for (const e of directory) {
    const nameBad = (message: string): never => {
      throw new ZipError('BUNDLE_ENTRY_INVALID', 'names', e.recordOffset + CENTRAL_HEADER, e.name, message);
    };
    const problem = zipNameProblem(e.name);
    if (problem !== null) nameBad(`entry ${JSON.stringify(e.name)} (central directory offset ${e.recordOffset}) is not a safe relative path: ${problem}`);
    if (seen.has(e.name)) nameBad(`entry ${JSON.stringify(e.name)} appears twice (again at offset ${e.headerOffset})`);
    seen.add(e.name);
  }
}

/**
 * The last stage of reading: each entry's data against its CRC-32, then the round trip — {@link writeZip} of the
 * entries must give `bytes` exactly (it does whenever the earlier checks pass; this keeps every byte significant
 * even if a check were missed).
 * @throws ZipError (phase `data`) naming the entry and the offset.
 */
export function readZipData(bytes: Uint8Array, directory: readonly ZipDirectoryEntry[]): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  for (const e of directory) {
    const data = bytes.slice(e.dataOffset, e.dataOffset + e.size);
    const actual = crc32(data);
    if (actual !== e.crc) {
      throw new ZipError('BUNDLE_ZIP_INVALID', 'data', e.dataOffset, e.name, `${JSON.stringify(e.name)} fails its CRC-32 check (${hex(actual, 8)}, recorded ${hex(e.crc, 8)}): its ${e.size} bytes at offset ${e.dataOffset} (or the recorded CRC) were changed`);
    }
    files.set(e.name, data);
  }
  const again = writeZip(files);
  const n = Math.min(again.length, bytes.length);
  let at = 0;
  while (at < n && again[at] === bytes[at]) at++;
  if (at < n || again.length !== bytes.length) {
    const entry = directory.find((e) => at >= e.headerOffset && at < e.dataOffset + e.size) ?? directory.find((e) => at >= e.recordOffset && at < e.recordOffset + CENTRAL_HEADER + encoder.encode(e.name).length);
    throw new ZipError('BUNDLE_ZIP_INVALID', 'data', at, entry?.name ?? null, `byte ${at} differs from the one byte form of these entries${entry ? ` (in ${JSON.stringify(entry.name)})` : ''}`);
  }
  return files;
}

/** Offset of the last end-record signature before `from`, within the largest possible comment, or -1. */
function lastEndSignature(bytes: Uint8Array, from: number): number {
  for (let at = Math.min(from, bytes.length - END_RECORD); at >= Math.max(0, from - 0xffff); at--) if (u32(bytes, at) === END_SIGNATURE) return at;
  return -1;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (ISO-HDLC: reflected polynomial 0xedb88320, initial and final XOR 0xffffffff), as ZIP, zlib and PNG use it. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
