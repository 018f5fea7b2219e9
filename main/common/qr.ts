/**
 * QR codes of card URLs (seed 004 §4, DESIGN.md "Offline bundle"): the module matrix from `qrcode-generator`
 * and an SVG rendering for the card's HTML page and the renderer. The PNG in offline bundles is encoded on the
 * host (runtime/receipts/qr-png.ts) from the same matrix.
 *
 * Text is encoded as UTF-8 in byte mode, so any URL (including non-ASCII paths) scans back exactly. Entitlement
 * codes ("TS1:" + base45, ISSUE14-PLAN.md) ask for the alphanumeric mode: 5.5 bits a character instead of 8, so a
 * ~280-character code fits version 10 instead of 13 and a phone or a cheap scanner reads it at arm's length.
 *
 * Pure module: shared by the runtime and the renderer.
 */
import qrcode from 'qrcode-generator';

/** Error correction: M (15 %) survives a smudged screen or print and keeps card URLs at small versions. */
export const QR_ERROR_CORRECTION = 'M';
/** The quiet zone the QR specification requires around the symbol, in modules. */
export const QR_QUIET_ZONE = 4;
/** Longest text accepted: well within version 40-M's byte capacity (2,331). */
export const QR_MAX_TEXT_BYTES = 2000;

/** The QR alphanumeric mode's 45 characters (ISO/IEC 18004 §7.4.4); base45 (RFC 9285) uses exactly these. */
export const QR_ALPHANUMERIC = /^[0-9A-Z $%*+\-./:]+$/;

/** `byte` (default): UTF-8 bytes. `alphanumeric`: digits, upper-case A–Z and ` $%*+-./:` only. */
export type QrMode = 'byte' | 'alphanumeric';

/** A QR symbol: `size` × `size` modules, row-major, 1 = dark. No quiet zone included. */
export interface QrMatrix {
  size: number;
  modules: Uint8Array;
}

/**
 * The QR matrix of `text` (smallest version that fits, error correction M, UTF-8 byte mode unless `mode` says
 * alphanumeric).
 * @throws RangeError when the text is empty or longer than {@link QR_MAX_TEXT_BYTES} UTF-8 bytes, or, in
 *   alphanumeric mode, holds a character outside {@link QR_ALPHANUMERIC}.
 */
export function qrMatrix(text: string, options: { mode?: QrMode } = {}): QrMatrix {
  const utf8 = new TextEncoder().encode(text);
  if (utf8.length === 0) throw new RangeError('a QR code needs some text');
  if (utf8.length > QR_MAX_TEXT_BYTES) throw new RangeError(`${utf8.length} bytes is too long for a QR code (at most ${QR_MAX_TEXT_BYTES})`);
  const qr = qrcode(0, QR_ERROR_CORRECTION);
  if (options.mode === 'alphanumeric') {
    if (!QR_ALPHANUMERIC.test(text)) throw new RangeError('alphanumeric mode takes only 0-9, A-Z, space and $%*+-./:');
    qr.addData(text, 'Alphanumeric');
    return matrixOf(qr);
  }
  // qrcode-generator's byte mode writes each char code's low byte: hand it one char per UTF-8 byte.
  let binary = '';
  for (const byte of utf8) binary += String.fromCharCode(byte);
  qr.addData(binary, 'Byte');
  return matrixOf(qr);
}

function matrixOf(qr: ReturnType<typeof qrcode>): QrMatrix {
  qr.make();
  const size = qr.getModuleCount();
  const modules = new Uint8Array(size * size);
  for (let row = 0; row < size; row++) for (let col = 0; col < size; col++) modules[row * size + col] = qr.isDark(row, col) ? 1 : 0;
  return { size, modules };
}

/**
 * An SVG image of the QR code of `text`: one path, quiet zone included, scalable (viewBox in modules) with
 * crisp edges. `label` becomes the accessible name (`aria-label`, escaped).
 * @throws RangeError as {@link qrMatrix}.
 */
export function qrSvg(text: string, options: { label?: string; pixelsPerModule?: number; mode?: QrMode } = {}): string {
  const { size, modules } = qrMatrix(text, options.mode ? { mode: options.mode } : {});
  const full = size + 2 * QR_QUIET_ZONE;
  const px = full * (options.pixelsPerModule ?? 4);
  let path = '';
  for (let row = 0; row < size; row++) {
    for (let col = 0; col < size; col++) {
      if (modules[row * size + col] === 1) path += `M${col + QR_QUIET_ZONE} ${row + QR_QUIET_ZONE}h1v1h-1z`;
    }
  }
  const label = escapeXml(options.label ?? 'QR code');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${full} ${full}" width="${px}" height="${px}" role="img" aria-label="${label}" shape-rendering="crispEdges">` +
    `<rect width="${full}" height="${full}" fill="#fff"/><path d="${path}" fill="#000"/></svg>`
  );
}

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}
