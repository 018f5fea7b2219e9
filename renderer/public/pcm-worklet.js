/* global AudioWorkletProcessor, sampleRate, registerProcessor -- the AudioWorkletGlobalScope */
// Push-to-talk capture (issue 6 point 6): an AudioWorklet that turns the microphone's float samples (at the
// context's rate, usually 48 kHz) into 16 kHz mono 16-bit PCM by averaging each output period (a box filter,
// enough against aliasing for speech), and posts 100 ms chunks to the page, which streams them to the runtime.
// A static file served with the renderer, so the CSP needs no blob: or inline script.
const OUT_RATE = 16000;
const CHUNK = 1600;

class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / OUT_RATE;
    this.pos = 0;
    this.sum = 0;
    this.count = 0;
    this.out = new Int16Array(CHUNK);
    this.n = 0;
    this.port.onmessage = (e) => {
      if (e.data === 'flush') this.flush();
    };
  }

  flush() {
    if (this.n === 0) return;
    const chunk = this.out.slice(0, this.n);
    this.port.postMessage(chunk.buffer, [chunk.buffer]);
    this.n = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      this.sum += channel[i];
      this.count++;
      this.pos += 1;
      if (this.pos >= this.step) {
        this.pos -= this.step;
        const v = Math.max(-1, Math.min(1, this.sum / this.count));
        this.out[this.n++] = v < 0 ? v * 0x8000 : v * 0x7fff;
        this.sum = 0;
        this.count = 0;
        if (this.n === CHUNK) this.flush();
      }
    }
    return true;
  }
}

registerProcessor('pcm-capture', PcmCapture);
