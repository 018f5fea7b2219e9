/**
 * A camera for Chromium where there is none (issue 14 "Done when"): a Y4M video (YUV4MPEG2, 4:2:0, full range)
 * whose frames show one QR code, black on white with its quiet zone, centred and as large as the frame allows —
 * what a phone held up to a scanner shows. Chromium plays it in a loop as the webcam with
 * `--use-fake-device-for-media-stream --use-fake-ui-for-media-stream --use-file-for-fake-video-capture=<file>`
 * ({@link fakeCameraArgs}).
 */
import { writeFileSync } from 'node:fs';
import { QR_QUIET_ZONE, qrMatrix } from '../../main/common/qr.js';

export interface FakeVideo {
  width?: number;
  height?: number;
  /** Frames in the file (Chromium loops them); default 10. */
  frames?: number;
  /** Frames of blank white before the code appears (a scan starts with nothing in view); default 0. */
  blankFrames?: number;
}

/** Writes `file`: a Y4M video of the QR code of `text`. */
export function writeQrVideo(file: string, text: string, options: FakeVideo = {}): void {
  const width = options.width ?? 640;
  const height = options.height ?? 480;
  const frames = options.frames ?? 10;
  const blank = options.blankFrames ?? 0;
  const { size, modules } = qrMatrix(text);
  const span = size + 2 * QR_QUIET_ZONE;
  const scale = Math.floor((Math.min(width, height) * 0.9) / span);
  if (scale < 2) throw new RangeError(`a ${size}-module code does not fit a ${width}×${height} frame`);
  const left = Math.floor((width - span * scale) / 2);
  const top = Math.floor((height - span * scale) / 2);
  const luma = new Uint8Array(width * height).fill(255);
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size; c++) {
      if (modules[r * size + c] !== 1) continue;
      const y0 = top + (r + QR_QUIET_ZONE) * scale;
      const x0 = left + (c + QR_QUIET_ZONE) * scale;
      for (let y = y0; y < y0 + scale; y++) luma.fill(0, y * width + x0, y * width + x0 + scale);
    }
  }
  const white = new Uint8Array(width * height).fill(255);
  const chroma = new Uint8Array((width / 2) * (height / 2) * 2).fill(128);
  const header = Buffer.from(`YUV4MPEG2 W${width} H${height} F10:1 Ip A1:1 C420jpeg\n`);
  const marker = Buffer.from('FRAME\n');
  const parts: Uint8Array[] = [header];
  for (let f = 0; f < blank + frames; f++) parts.push(marker, f < blank ? white : luma, chroma);
  writeFileSync(file, Buffer.concat(parts));
}

/** Chromium flags that make `file` the camera and grant camera access without a prompt. */
export function fakeCameraArgs(file: string): string[] {
  return ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${file}`];
}
