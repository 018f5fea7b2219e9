/**
 * PNG images of QR codes for offline bundles (`qr.png`): the matrix from common/qr.ts, encoded as an 8-bit
 * greyscale PNG (PNG spec §11: IHDR, one IDAT of zlib data with filter type 0 per row, IEND; each chunk's
 * CRC-32 over its type and data). Deterministic: the same text gives the same bytes.
 */
import { crc32, deflateSync } from 'node:zlib';
import { QR_QUIET_ZONE, qrMatrix } from '../../common/qr.js';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Default pixels per module: a version-4 card URL comes out at 264 × 264 pixels. */
export const QR_PNG_SCALE = 6;

/**
 * A PNG of the QR code of `text`, quiet zone included, `scale` pixels per module (1–32).
 * @throws RangeError for empty or too long text (see `qrMatrix`) or a scale out of range.
 */
export function qrPng(text: string, scale = QR_PNG_SCALE): Uint8Array {
  if (!Number.isInteger(scale) || scale < 1 || scale > 32) throw new RangeError(`scale must be an integer from 1 to 32, not ${scale}`);
  const { size, modules } = qrMatrix(text);
  const width = (size + 2 * QR_QUIET_ZONE) * scale;
  // Each row: filter byte 0 (None), then one greyscale byte per pixel (0 black, 255 white).
  const stride = width + 1;
  const raw = Buffer.alloc(stride * width, 0xff);
  for (let y = 0; y < width; y++) {
    raw[y * stride] = 0;
    const row = Math.floor(y / scale) - QR_QUIET_ZONE;
    if (row < 0 || row >= size) continue;
    for (let x = 0; x < width; x++) {
      const col = Math.floor(x / scale) - QR_QUIET_ZONE;
      if (col >= 0 && col < size && modules[row * size + col] === 1) raw[y * stride + 1 + x] = 0;
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(width, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // colour type: greyscale
  header[10] = 0; // compression: deflate
  header[11] = 0; // filter method 0
  header[12] = 0; // no interlace
  return new Uint8Array(Buffer.concat([SIGNATURE, chunk('IHDR', header), chunk('IDAT', deflateSync(raw, { level: 9 })), chunk('IEND', Buffer.alloc(0))]));
}

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}
