/**
 * Run one speech tool as a child process: no shell, input on stdin, output collected, killed on abort or
 * timeout. Every engine call goes through here, so "text is data, never code" holds in one place.
 */
import { spawn } from 'node:child_process';
import { TesseraError } from '../../common/errors.js';

/** A fully specified process invocation (built by pure functions, so tests can inspect it). */
export interface Invocation {
  cmd: string;
  args: string[];
  /** Bytes or text written to stdin, then stdin is closed. */
  stdin?: Uint8Array | string;
  /** Extra environment variables (merged over the parent's). */
  env?: Record<string, string>;
}

export interface RunOptions {
  signal?: AbortSignal;
  /** Kill the process after this long (default 30 s). */
  timeoutMs?: number;
  /** Called once with the first stdout bytes. */
  onFirstOutput?: () => void;
}

export interface RunResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * Spawn `inv` and wait for it to exit. Rejects with RUN_CANCELLED on abort, VOICE_UNAVAILABLE when the program
 * cannot be started or runs past its timeout. A non-zero exit is returned, not thrown: the caller knows what
 * the program's codes mean.
 */
export function runProcess(inv: Invocation, options: RunOptions = {}): Promise<RunResult> {
  const { signal, timeoutMs = 30_000 } = options;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new TesseraError('RUN_CANCELLED', `${inv.cmd} was cancelled before it started`));
      return;
    }
    const child = spawn(inv.cmd, inv.args, { stdio: ['pipe', 'pipe', 'pipe'], env: inv.env ? { ...process.env, ...inv.env } : process.env, windowsHide: true });
    const out: Buffer[] = [];
    let err = '';
    let first = true;
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = () => {
      child.kill('SIGKILL');
      finish(() => reject(new TesseraError('RUN_CANCELLED', `${inv.cmd} was cancelled`)));
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(() => reject(new TesseraError('VOICE_UNAVAILABLE', `${inv.cmd} did not finish within ${timeoutMs} ms and was stopped`, { retryable: true })));
    }, timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (chunk: Buffer) => {
      if (first) {
        first = false;
        options.onFirstOutput?.();
      }
      out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (err.length < 8192) err += chunk.toString('utf8');
    });
    child.on('error', (e) => finish(() => reject(new TesseraError('VOICE_UNAVAILABLE', `cannot run ${inv.cmd}: ${e.message}`, { cause: e }))));
    child.on('close', (code) => finish(() => resolve({ code, stdout: Buffer.concat(out), stderr: err })));
    // A program that exits without reading all of stdin makes the write fail with EPIPE; its exit code tells.
    child.stdin.on('error', () => undefined);
    child.stdin.end(inv.stdin ?? '');
  });
}

/** Milliseconds on the monotonic clock. */
export const nowMs = (): number => performance.now();

/** Fractional epoch milliseconds from the monotonic clock (comparable within one process). */
export const wallMs = (): number => performance.timeOrigin + performance.now();
