/**
 * Node's Buffer where this module runs in Node (the runtime, the CLI); undefined in the renderer and in plugin
 * isolates. The pure modules use it for their encoders when it is there — the same text as their portable code,
 * which each one keeps and tests against Node's — because building text a few characters at a time in
 * JavaScript allocated hundreds of kilobytes per receipt run.
 */
const NodeBuffer = (globalThis as { Buffer?: { from(buffer: ArrayBufferLike, offset: number, length: number): { toString(encoding: 'base64' | 'hex'): string } } }).Buffer;

/** Node's view of exactly these bytes (no copy); undefined outside Node. */
export function nodeView(bytes: Uint8Array): { toString(encoding: 'base64' | 'hex'): string } | undefined {
  return NodeBuffer?.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
