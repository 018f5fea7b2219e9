/**
 * A QR scanner on the device camera (issue 14 point 6): getUserMedia with the rear camera preferred, frames drawn
 * to a canvas and decoded with jsQR (pure JS: nothing leaves the device, nothing is fetched).
 *
 * Cost is bounded: at most one decode per animation frame, frames downscaled to {@link MAX_DECODE_SIDE}, and after
 * a decode that took `d` ms the next waits at least `d` ms, so decoding never takes more than half the main thread.
 * The camera stops when a code is found or when the caller stops the scanner (leaving the area); the caller must
 * call `stop()` in every case, which is safe more than once.
 */
import jsQR from 'jsqr';

/** Longest side of the image handed to the decoder; a QR held at arm's length stays readable at this size. */
export const MAX_DECODE_SIDE = 640;

/** After a code the caller passed over, the next decode waits this long. */
const PASS_OVER_MS = 500;

export type CameraProblem = 'unsupported' | 'denied' | 'no-camera' | 'busy' | 'failed';

export interface ScanTiming {
  /** performance.now() when the camera delivered its first frame. */
  firstFrameAt: number;
  /** performance.now() when the code was decoded. */
  decodedAt: number;
  /** Frames decoded until the code was found. */
  frames: number;
}

export interface ScannerOptions {
  /**
   * A code was read. Return false to pass over it and scan on (e.g. the code whose verdict was just shown, still held
   * up); otherwise the camera is stopped right after this returns.
   */
  onCode(text: string, timing: ScanTiming): boolean;
  /** The camera cannot be used: `message` says so in words staff can act on. */
  onProblem(problem: CameraProblem, message: string): void;
  /** The camera is showing frames (the first one arrived). */
  onLive?(firstFrameAt: number): void;
  /** For tests and kiosks with a known camera; defaults to the rear camera where there is one. */
  constraints?: MediaStreamConstraints;
}

export interface Scanner {
  /** Stops decoding and releases the camera; safe to call again. */
  stop(): void;
}

/** Plain words for a failed getUserMedia, by the DOMException name browsers use. */
export function cameraProblem(err: unknown): { problem: CameraProblem; message: string } {
  const name = (err as { name?: string } | null)?.name ?? '';
  if (name === 'NotAllowedError' || name === 'SecurityError') return { problem: 'denied', message: 'The camera is not allowed for this page. Type or paste the code, or use a hand scanner.' };
  if (name === 'NotFoundError' || name === 'OverconstrainedError' || name === 'DevicesNotFoundError') return { problem: 'no-camera', message: 'No camera was found. Type or paste the code, or use a hand scanner.' };
  if (name === 'NotReadableError' || name === 'AbortError') return { problem: 'busy', message: 'The camera is in use by another program or failed to start. Type or paste the code, or try the camera again.' };
  return { problem: 'failed', message: `The camera could not be started (${name || String(err)}). Type or paste the code instead.` };
}

/** Starts the camera into `video` and scans until a code is found or `stop()` is called. */
export function startScanner(video: HTMLVideoElement, options: ScannerOptions): Scanner {
  let stopped = false;
  let stream: MediaStream | undefined;
  let frame = 0;
  let firstFrameAt = 0;
  let frames = 0;
  let notBefore = 0;
  const canvas = document.createElement('canvas');
  const context = canvas.getContext('2d', { willReadFrequently: true });

  const release = () => {
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    for (const track of stream?.getTracks() ?? []) track.stop();
    stream = undefined;
    video.srcObject = null;
  };
  const stop = () => {
    stopped = true;
    release();
  };

  const tick = () => {
    frame = 0;
    if (stopped || !context) return;
    frame = requestAnimationFrame(tick);
    if (video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA || video.videoWidth === 0) return;
    const now = performance.now();
    if (!firstFrameAt) {
      firstFrameAt = now;
      options.onLive?.(now);
    }
    if (now < notBefore) return;
    const scale = Math.min(1, MAX_DECODE_SIDE / Math.max(video.videoWidth, video.videoHeight));
    const width = Math.max(1, Math.round(video.videoWidth * scale));
    const height = Math.max(1, Math.round(video.videoHeight * scale));
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== height) canvas.height = height;
    context.drawImage(video, 0, 0, width, height);
    const image = context.getImageData(0, 0, width, height);
    // Camera QR codes are dark on light; inverted codes (a phone in dark mode) are rare enough to try second.
    const found = jsQR(image.data, width, height, { inversionAttempts: 'attemptBoth' });
    frames++;
    const decodedAt = performance.now();
    notBefore = decodedAt + (decodedAt - now);
    if (found && found.data !== '') {
      // The camera is released once the caller took the code; a code passed over is looked at again a bit later.
      if (frame) cancelAnimationFrame(frame);
      frame = 0;
      if (options.onCode(found.data, { firstFrameAt, decodedAt, frames }) === false) {
        if (!stopped) frame = requestAnimationFrame(tick);
        notBefore = decodedAt + PASS_OVER_MS;
      } else stop();
    }
  };

  const media = typeof navigator === 'undefined' ? undefined : navigator.mediaDevices;
  if (!media?.getUserMedia) {
    // Browsers offer the camera only to secure pages: https, or this device itself (127.0.0.1).
    queueMicrotask(() => options.onProblem('unsupported', 'This browser offers no camera to this page (it needs https or the device itself). Type or paste the code, or use a hand scanner.'));
    return { stop };
  }
  if (!context) {
    queueMicrotask(() => options.onProblem('failed', 'This browser cannot read camera frames. Type or paste the code instead.'));
    return { stop };
  }
  const constraints: MediaStreamConstraints = options.constraints ?? { audio: false, video: { facingMode: { ideal: 'environment' }, width: { ideal: 1280 }, height: { ideal: 720 } } };
  media.getUserMedia(constraints).then(
    async (s) => {
      if (stopped) {
        for (const track of s.getTracks()) track.stop();
        return;
      }
      stream = s;
      video.srcObject = s;
      video.muted = true;
      video.playsInline = true;
      try {
        await video.play();
      } catch {
        // Autoplay of a muted camera stream is allowed everywhere that matters; frames are still read when paused.
      }
      if (!stopped) frame = requestAnimationFrame(tick);
    },
    (err: unknown) => {
      if (stopped) return;
      const { problem, message } = cameraProblem(err);
      options.onProblem(problem, message);
    },
  );
  return { stop };
}
