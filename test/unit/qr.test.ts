import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { QR_QUIET_ZONE, qrMatrix, qrSvg } from '../../main/common/qr.js';
import { qrPng } from '../../main/runtime/receipts/qr-png.js';

const URL_TEXT = 'http://127.0.0.1:7420/v1/r/b3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262';

/** CRC-32 (ISO-HDLC, reflected 0xEDB88320) written out bit by bit: the reference the PNG chunks must match. */
function referenceCrc(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** The 7 × 7 finder pattern every QR symbol has in three corners. */
function hasFinder(m: { size: number; modules: Uint8Array }, top: number, left: number): boolean {
  for (let r = 0; r < 7; r++) {
    for (let c = 0; c < 7; c++) {
      const ring = Math.max(Math.abs(r - 3), Math.abs(c - 3));
      const dark = ring !== 2;
      if ((m.modules[(top + r) * m.size + left + c] === 1) !== dark) return false;
    }
  }
  return true;
}

function chunks(png: Uint8Array): Array<{ type: string; data: Uint8Array; crc: number; crcInput: Uint8Array }> {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const out = [];
  for (let at = 8; at < png.length; ) {
    const length = view.getUint32(at);
    const type = new TextDecoder().decode(png.subarray(at + 4, at + 8));
    out.push({ type, data: png.subarray(at + 8, at + 8 + length), crc: view.getUint32(at + 8 + length), crcInput: png.subarray(at + 4, at + 8 + length) });
    at += 12 + length;
  }
  return out;
}

describe('QR codes of card URLs', () => {
  it('makes a valid symbol: a version size (17 + 4v) with the three finder patterns', () => {
    const m = qrMatrix(URL_TEXT);
    expect((m.size - 17) % 4).toBe(0);
    expect(m.size).toBeGreaterThanOrEqual(21);
    expect(hasFinder(m, 0, 0)).toBe(true);
    expect(hasFinder(m, 0, m.size - 7)).toBe(true);
    expect(hasFinder(m, m.size - 7, 0)).toBe(true);
    expect(hasFinder(m, m.size - 7, m.size - 7)).toBe(false);
  });

  it('encodes non-ASCII text as UTF-8 bytes: so the size limit counts bytes', () => {
    // 2,000 UTF-8 bytes need version 38 (169 modules); the same count of Latin-1 bytes would need far less.
    expect(qrMatrix('é'.repeat(1000)).size).toBe(169);
    expect(qrMatrix('e'.repeat(1000)).size).toBeLessThan(169);
    expect(() => qrMatrix('é'.repeat(1001))).toThrow(RangeError);
  });

  it('draws the SVG with one unit square per dark module, inside the quiet zone, with an escaped label', () => {
    const m = qrMatrix(URL_TEXT);
    const svg = qrSvg(URL_TEXT, { label: 'Card <b>"x"</b>' });
    const squares = svg.match(/M\d+ \d+h1v1h-1z/g) ?? [];
    expect(squares.length).toBe(m.modules.reduce((a, b) => a + b, 0));
    const full = m.size + 2 * QR_QUIET_ZONE;
    expect(svg).toContain(`viewBox="0 0 ${full} ${full}"`);
    expect(svg).toContain('aria-label="Card &lt;b&gt;&quot;x&quot;&lt;/b&gt;"');
    expect(svg).not.toContain('<b>');
    const coords = squares.map((s) => s.match(/\d+/g)!.slice(0, 2).map(Number));
    expect(Math.min(...coords.flat())).toBe(QR_QUIET_ZONE);
    expect(Math.max(...coords.flat())).toBe(QR_QUIET_ZONE + m.size - 1);
  });

  it('refuses empty and over-long text with RangeError', () => {
    expect(() => qrMatrix('')).toThrow(RangeError);
    expect(() => qrSvg('x'.repeat(2001))).toThrow(RangeError);
    expect(() => qrPng(URL_TEXT, 0)).toThrow(RangeError);
  });
});

describe('QR PNG', () => {
  it('is a valid PNG: signature, IHDR/IDAT/IEND with correct CRC-32s, and pixels that are the matrix', () => {
    const scale = 3;
    const png = qrPng(URL_TEXT, scale);
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const list = chunks(png);
    expect(list.map((c) => c.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
    for (const c of list) expect(c.crc, c.type).toBe(referenceCrc(c.crcInput));

    const m = qrMatrix(URL_TEXT);
    const width = (m.size + 2 * QR_QUIET_ZONE) * scale;
    const ihdr = new DataView(list[0]!.data.buffer, list[0]!.data.byteOffset, 13);
    expect([ihdr.getUint32(0), ihdr.getUint32(4), list[0]!.data[8], list[0]!.data[9], list[0]!.data[12]]).toEqual([width, width, 8, 0, 0]);

    const raw = inflateSync(list[1]!.data);
    expect(raw.length).toBe(width * (width + 1));
    for (let y = 0; y < width; y++) {
      expect(raw[y * (width + 1)]).toBe(0);
      for (let x = 0; x < width; x++) {
        const row = Math.floor(y / scale) - QR_QUIET_ZONE;
        const col = Math.floor(x / scale) - QR_QUIET_ZONE;
        const dark = row >= 0 && row < m.size && col >= 0 && col < m.size && m.modules[row * m.size + col] === 1;
        if (raw[y * (width + 1) + 1 + x] !== (dark ? 0 : 255)) throw new Error(`pixel ${x},${y} is wrong`);
      }
    }
  });

  it('is deterministic: the same text gives the same bytes', () => {
    expect(Buffer.from(qrPng(URL_TEXT)).equals(Buffer.from(qrPng(URL_TEXT)))).toBe(true);
    expect(Buffer.from(qrPng(URL_TEXT)).equals(Buffer.from(qrPng(URL_TEXT + '0')))).toBe(false);
  });
});

describe('alphanumeric mode (entitlement codes, ISSUE14-PLAN.md)', () => {
  // A "TS1:" code of 280 characters, as the wallet shows it.
  const CODE = `TS1:${'6BFOXN*TS0BI$ZD.P9UOL97O4-2HH77HRM3DSPTLRR+%3'.repeat(6)}`.slice(0, 280);

  it('fits a 280-character base45 code in a smaller symbol than byte mode, and scans back exactly', async () => {
    const alnum = qrMatrix(CODE);
    // The same text with one lower-case letter must go in byte mode: a larger symbol.
    expect(alnum.size).toBeLessThan(qrMatrix(`${CODE.slice(0, -1)}a`).size);
    expect(alnum.size).toBe(57); // version 10
    const { default: jsQR } = await import('jsqr');
    const px = 4;
    const full = (alnum.size + 2 * QR_QUIET_ZONE) * px;
    const rgba = new Uint8ClampedArray(full * full * 4).fill(255);
    for (let r = 0; r < alnum.size; r++) {
      for (let c = 0; c < alnum.size; c++) {
        if (alnum.modules[r * alnum.size + c] !== 1) continue;
        for (let y = 0; y < px; y++) for (let x = 0; x < px; x++) rgba.fill(0, (((r + QR_QUIET_ZONE) * px + y) * full + (c + QR_QUIET_ZONE) * px + x) * 4, (((r + QR_QUIET_ZONE) * px + y) * full + (c + QR_QUIET_ZONE) * px + x) * 4 + 3);
      }
    }
    expect(jsQR(rgba, full, full)?.data).toBe(CODE);
    expect(qrSvg(CODE)).toContain(`viewBox="0 0 ${alnum.size + 2 * QR_QUIET_ZONE} ${alnum.size + 2 * QR_QUIET_ZONE}"`);
  });

  it('encodes text outside the 45 characters (lower case, other punctuation) in byte mode, exactly', () => {
    expect(qrMatrix('TS1:abc').size).toBeGreaterThan(0);
    expect(qrMatrix('TS1:A#B').size).toBeGreaterThan(0);
  });
});
