/**
 * Push-to-talk capture in the browser (issue 6 point 6): the microphone through getUserMedia, an AudioWorklet
 * (renderer/public/pcm-worklet.js, a static file: the CSP allows it as 'self' script) that makes 16 kHz
 * 16-bit mono PCM, streamed to the runtime as the button is held.
 */
import type { DialogueConnection } from '../../../main/common/api.js';

/** The sample rate the worklet produces (the runtime's speech rate). */
export const CAPTURE_RATE = 16_000;

export interface Capture {
  /** Stop capturing; the last partial chunk is sent before the utterance ends. */
  stop(cancel?: boolean): Promise<void>;
}

/** Starts capturing into `dialogue`; rejects when the microphone is refused or absent. */
export async function startCapture(dialogue: DialogueConnection, question?: { run_id: string; step: string }): Promise<Capture> {
  if (!navigator.mediaDevices?.getUserMedia) throw new Error('This browser gives no access to a microphone (it needs a secure origin such as http://127.0.0.1).');
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
  const context = new AudioContext();
  try {
    await context.audioWorklet.addModule(new URL('./pcm-worklet.js', document.baseURI).href);
  } catch (err) {
    stream.getTracks().forEach((t) => t.stop());
    await context.close();
    throw err;
  }
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, 'pcm-capture');
  // A silent sink keeps the graph pulling the worklet without playing the microphone back.
  const mute = context.createGain();
  mute.gain.value = 0;
  let flushed: (() => void) | undefined;
  node.port.onmessage = (e: MessageEvent<ArrayBuffer>) => {
    dialogue.sendAudio(e.data);
    flushed?.();
  };
  dialogue.startAudio(CAPTURE_RATE, question);
  source.connect(node).connect(mute).connect(context.destination);
  let stopped = false;
  return {
    async stop(cancel = false) {
      if (stopped) return;
      stopped = true;
      if (!cancel) {
        // The worklet holds up to 100 ms: ask for it, and wait (briefly) for it to arrive before ending.
        await new Promise<void>((resolve) => {
          flushed = resolve;
          node.port.postMessage('flush');
          setTimeout(resolve, 150);
        });
      }
      source.disconnect();
      node.disconnect();
      stream.getTracks().forEach((t) => t.stop());
      await context.close();
      dialogue.endAudio(cancel);
    },
  };
}
