/**
 * A camera for Chromium that shows a QR code (issue 14 "Done when": staff scan from Chromium's fake camera fed a
 * video of the QR). Writes a YUV4MPEG2 (Y4M) file, 4:2:0, that Chromium loops when started with
 * {@link fakeCameraArgs}: `--use-fake-device-for-media-stream --use-fake-ui-for-media-stream
 * --use-file-for-fake-video-capture=<file.y4m>` (a fake device, the permission prompt answered "allow", frames
 * from the file).
 *
 * The QR is drawn black on white with the quiet zone the specification asks for (4 modules) and large modules,
 * centred. Entitlement codes (`TS1:` + base45) use the QR alphanumeric mode, as a traveller's QR does; other text
 * uses byte mode.
 */
import { writeFileSync } from 'node:fs';
import { QR_QUIET_ZONE as QUIET_ZONE, qrMatrix } from '../../main/common/qr.js';

export interface FakeCameraOptions {
  width?: number;
  height?: number;
  /** Frames in the file (all identical); Chromium loops them. */
  frames?: number;
  fps?: number;
  /** Pixels per QR module; defaults to the largest that fits with the quiet zone in 90 % of the short side. */
  moduleSize?: number;
  /** Leave the frame blank (no QR): a camera that sees nothing to scan. */
  blank?: boolean;
}

/** Writes a Y4M video showing the QR of `text` to `file`; returns the Chromium flags that make it the camera. */
export function writeQrVideo(file: string, text: string, options: FakeCameraOptions = {}): string[] {
  const width = options.width ?? 640;
  const height = options.height ?? 480;
  if (width % 2 || height % 2) throw new RangeError('4:2:0 needs an even width and height');
  const luma = new Uint8Array(width * height).fill(255);
  if (!options.blank) {
    // The same symbol a traveller's screen shows (main/common/qr.ts: alphanumeric mode for a TS1: code).
    const { size, modules } = qrMatrix(text);
    const dark = (row: number, col: number) => modules[row * size + col] === 1;
    const full = size + 2 * QUIET_ZONE;
    const module = options.moduleSize ?? Math.floor((Math.min(width, height) * 0.9) / full);
    if (module < 2) throw new RangeError(`a ${size}-module QR does not fit ${width}x${height} at 2 px a module`);
    const left = Math.floor((width - size * module) / 2);
    const top = Math.floor((height - size * module) / 2);
    for (let row = 0; row < size; row++) {
      for (let col = 0; col < size; col++) {
        if (!dark(row, col)) continue;
        for (let y = 0; y < module; y++) luma.fill(0, (top + row * module + y) * width + left + col * module, (top + row * module + y) * width + left + (col + 1) * module);
      }
    }
  }
  const chroma = new Uint8Array((width / 2) * (height / 2)).fill(128);
  const header = Buffer.from(`YUV4MPEG2 W${width} H${height} F${options.fps ?? 15}:1 Ip A1:1 C420jpeg\n`, 'latin1');
  const frameHeader = Buffer.from('FRAME\n', 'latin1');
  const frame = Buffer.concat([frameHeader, luma, chroma, chroma]);
  writeFileSync(file, Buffer.concat([header, ...Array.from({ length: options.frames ?? 3 }, () => frame)]));
  return fakeCameraArgs(file);
}

/** The Chromium flags that make `file` (Y4M) the camera and allow it without a prompt. */
export function fakeCameraArgs(file: string): string[] {
  return ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${file}`];
}
