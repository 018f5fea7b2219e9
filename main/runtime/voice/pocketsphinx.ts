/**
 * Speech-to-text with Debian's pocketsphinx 0.8 (`pocketsphinx_continuous`) constrained by the JSGF grammar
 * compiled from the intent rules (./grammar.ts).
 *
 * One process per utterance, raw 16 kHz PCM in a temporary file (`-infile`; not stdin: Node's child stdin
 * is a socket, which `fopen("/dev/stdin")` refuses). Measured on the 2-core machine: with a dictionary of only
 * the grammar's words, starting the process (model load, grammar compile) costs ~80 ms CPU and decoding a 2 s
 * utterance ~90 ms more — a real-time factor under 0.1 in CPU time. A long-running decoder would save the
 * 80 ms but needs a protocol that 0.8's command-line tools do not have; one process per utterance also means a
 * crash or hang costs one utterance, never the runtime. test/bench/voice.bench.ts measures it against
 * pocketsphinx_continuous run directly.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { TesseraError } from '../../common/errors.js';
import type { RuleSet } from '../intents/index.js';
import type { SphinxModel, VoiceTools } from './detect.js';
import { aptFix } from './detect.js';
import type { GrammarFiles } from './grammar.js';
import { grammarFiles } from './grammar.js';
import type { Invocation } from './proc.js';
import { nowMs, runProcess } from './proc.js';
import { SPEECH_SAMPLE_RATE } from './types.js';
import type { PartStatus, SttEngine, Transcript } from './types.js';

/**
 * Decoder settings, chosen on the espeak-ng corpus test (test/integration/voice-accuracy.test.ts):
 * - much wider beams than the defaults and no cap on active HMMs: a grammar this small is cheap to search
 *   in full, and the default beams prune the right path (numbers: "fifteen" → "fifty"), or end the search
 *   "not matching the grammar" with no result at all (accuracy 30/34 → 33/34 on the corpus);
 * - no spectral-subtraction noise removal: it eats the weak final consonants of quiet or synthetic speech;
 * - dither with a fixed seed: segments can hold digital silence (all zeros), whose log energy is −∞;
 *   the fixed seed keeps recognition deterministic.
 */
export const DECODER_ARGS: readonly string[] = ['-beam', '1e-120', '-pbeam', '1e-120', '-wbeam', '1e-100', '-maxhmmpf', '-1', '-remove_noise', 'no', '-dither', 'yes', '-seed', '1'];

/** The command that decodes one utterance of raw 16 kHz mono 16-bit little-endian PCM in `rawFile`. */
export function sphinxInvocation(bin: string, model: SphinxModel, grammar: Pick<GrammarFiles, 'jsgfFile' | 'dictFile'>, rawFile: string, extraArgs: readonly string[] = DECODER_ARGS): Invocation {
  return {
    cmd: bin,
    args: ['-infile', rawFile, '-samprate', String(SPEECH_SAMPLE_RATE), '-jsgf', grammar.jsgfFile, '-dict', grammar.dictFile, '-hmm', model.hmm, '-logfn', '/dev/null', ...extraArgs],
  };
}

/** The transcript in pocketsphinx_continuous's output: its non-empty lines, joined, lower case. */
export function parseSphinxOutput(stdout: string): string {
  return stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('INFO:') && !l.startsWith('ERROR:'))
    .join(' ')
    .toLowerCase();
}

export interface PocketsphinxOptions {
  tools: VoiceTools;
  ruleSets: readonly RuleSet[];
  /** Where compiled grammars are cached (e.g. `<data>/voice`). */
  cacheDir: string;
  /** Kill a decoder after this long (default 20 s). */
  timeoutMs?: number;
  /** Decoder settings after the fixed arguments (default {@link DECODER_ARGS}). */
  decoderArgs?: readonly string[];
}

/** Why pocketsphinx cannot be used here, or undefined when it can. */
export function sphinxMissing(tools: VoiceTools): PartStatus | undefined {
  if (!tools.pocketsphinx) return { available: false, reason: 'pocketsphinx is not installed (pocketsphinx_continuous not on PATH)', fix: aptFix('pocketsphinx pocketsphinx-en-us') };
  if (!tools.sphinxModel) return { available: false, reason: 'the pocketsphinx US English model is missing (/usr/share/pocketsphinx/model/en-us)', fix: aptFix('pocketsphinx-en-us') };
  return undefined;
}

/**
 * pocketsphinx with the rules' grammar (compiled or taken from the cache at creation). Throws
 * VOICE_UNAVAILABLE when pocketsphinx or its model is missing, or no rule can become a grammar.
 */
export function createPocketsphinxStt(options: PocketsphinxOptions): SttEngine & { readonly grammar: GrammarFiles; refresh(): GrammarFiles } {
  const missing = sphinxMissing(options.tools);
  if (missing) throw new TesseraError('VOICE_UNAVAILABLE', `${missing.reason}; ${missing.fix}`);
  const model = options.tools.sphinxModel!;
  const espeak = options.tools.espeak ? { espeak: options.tools.espeak } : {};
  // Replaced by `refresh` when a dynamic list of the rules changes; each utterance uses the grammar of its start.
  let grammar = grammarFiles(options.ruleSets, model.dict, options.cacheDir, espeak);
  const bin = options.tools.pocketsphinx!;
  const inFlight = new Set<AbortController>();
  const tmp = mkdtempSync(join(tmpdir(), 'tessera-stt-'));
  let seq = 0;
  return {
    id: 'pocketsphinx',
    get grammar() {
      return grammar;
    },
    refresh() {
      // The folder of the grammar in use stays until the next refresh: a decoder may be starting on it right now.
      grammar = grammarFiles(options.ruleSets, model.dict, options.cacheDir, { ...espeak, keep: [dirname(grammar.jsgfFile)] });
      return grammar;
    },
    async transcribe(pcm16k, opts = {}): Promise<Transcript> {
      const started = nowMs();
      if (pcm16k.length === 0) return { engine: 'pocketsphinx', text: '', ms: 0 };
      const ac = new AbortController();
      const onAbort = () => ac.abort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      inFlight.add(ac);
      const raw = join(tmp, `utterance-${++seq}.raw`);
      try {
        if (opts.signal?.aborted) ac.abort();
        writeFileSync(raw, new Uint8Array(pcm16k.buffer, pcm16k.byteOffset, pcm16k.byteLength));
        const result = await runProcess(sphinxInvocation(bin, model, grammar, raw, options.decoderArgs), { signal: ac.signal, timeoutMs: options.timeoutMs ?? 20_000 });
        if (result.code !== 0) throw new TesseraError('VOICE_UNAVAILABLE', `pocketsphinx_continuous exited with ${result.code}: ${result.stderr.trim().split('\n').pop() ?? ''}`);
        return { engine: 'pocketsphinx', text: parseSphinxOutput(result.stdout.toString('utf8')), ms: nowMs() - started };
      } finally {
        inFlight.delete(ac);
        rmSync(raw, { force: true });
        opts.signal?.removeEventListener('abort', onAbort);
      }
    },
    dispose() {
      for (const ac of inFlight) ac.abort();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}
