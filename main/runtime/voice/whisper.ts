/**
 * Whisper through transformers.js (issue 6 point 4), used when a model folder is configured. Strictly
 * offline: `env.allowRemoteModels = false` and `env.localModelPath` is the folder's parent, so a missing
 * file is an error, never a download.
 *
 * `@huggingface/transformers` is not a dependency (it needs `onnxruntime-node-install=skip` or a sharp
 * override to install here, DESIGN.md "Dependencies"): it is imported dynamically by a name TypeScript and
 * bundlers do not resolve, and its absence is a status message, not a crash.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { TesseraError } from '../../common/errors.js';
import { nowMs } from './proc.js';
import type { PartStatus, SttEngine, Transcript } from './types.js';

/** The package transformers.js is published as. */
export const TRANSFORMERS_PACKAGE = '@huggingface/transformers';

/** How to install transformers.js so that it loads here (see DESIGN.md "Dependencies"). */
export const TRANSFORMERS_FIX = `npm install ${TRANSFORMERS_PACKAGE} --onnxruntime-node-install=skip (it reuses the onnxruntime-node already installed)`;

/** The subset of transformers.js this module uses. */
export interface TransformersModule {
  env: { allowRemoteModels: boolean; allowLocalModels: boolean; localModelPath: string };
  pipeline(task: 'automatic-speech-recognition', model: string, options?: Record<string, unknown>): Promise<AsrPipeline>;
}

/** A transformers.js speech-recognition pipeline: callable, and disposable (releases its ONNX sessions). */
export interface AsrPipeline {
  (audio: Float32Array, options?: Record<string, unknown>): Promise<{ text: string } | Array<{ text: string }>>;
  dispose?: () => Promise<void>;
}

/** Loads transformers.js; a parameter so tests can check the "absent" path without uninstalling anything. */
export type TransformersImporter = () => Promise<TransformersModule>;

/** The real importer. The specifier is a variable so that `tsc` and bundlers leave it alone. */
export const importTransformers: TransformersImporter = async () => {
  const specifier: string = TRANSFORMERS_PACKAGE;
  return (await import(specifier)) as TransformersModule;
};

/**
 * Why the model folder cannot be used, or undefined when it looks like a transformers.js Whisper export
 * (`config.json` and an `onnx/` folder).
 */
export function whisperFolderProblem(modelDir: string | undefined): PartStatus | undefined {
  if (modelDir === undefined || modelDir.trim() === '') {
    return { available: false, reason: 'no Whisper model folder is configured', fix: 'set the voice config whisperModelDir to a folder holding a transformers.js Whisper export (e.g. onnx-community/whisper-base.en: config.json, tokenizer.json, onnx/*.onnx)' };
  }
  const dir = resolve(modelDir);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return { available: false, reason: `the Whisper model folder ${dir} does not exist`, fix: 'copy a transformers.js Whisper export there, or fix whisperModelDir' };
  if (!existsSync(join(dir, 'config.json'))) return { available: false, reason: `${dir} is not a transformers.js model folder: it has no config.json`, fix: 'point whisperModelDir at the folder that holds config.json' };
  if (!existsSync(join(dir, 'onnx'))) return { available: false, reason: `${dir} has no onnx/ folder with the model weights`, fix: 'use an ONNX export of Whisper for transformers.js (onnx/encoder_model*.onnx, onnx/decoder_model_merged*.onnx)' };
  return undefined;
}

export interface WhisperOptions {
  modelDir: string | undefined;
  /** Spoken language (default "en"); ignored by English-only (".en") models. */
  language?: string;
  importer?: TransformersImporter;
}

/**
 * Whisper as an `SttEngine`. Throws VOICE_UNAVAILABLE whose message says exactly what is missing — no folder
 * configured, a folder that is not a model, or transformers.js not installed — and how to fix it.
 */
export async function createWhisperStt(options: WhisperOptions): Promise<SttEngine> {
  const problem = whisperFolderProblem(options.modelDir);
  if (problem) throw new TesseraError('VOICE_UNAVAILABLE', `Whisper is not available: ${problem.reason}; ${problem.fix}`);
  const dir = resolve(options.modelDir!);
  let tf: TransformersModule;
  try {
    tf = await (options.importer ?? importTransformers)();
  } catch (err) {
    throw new TesseraError('VOICE_UNAVAILABLE', `Whisper is not available: ${TRANSFORMERS_PACKAGE} is not installed or does not load (${(err as Error).message.split('\n')[0]}); ${TRANSFORMERS_FIX}`, { cause: err });
  }
  tf.env.allowRemoteModels = false;
  tf.env.allowLocalModels = true;
  tf.env.localModelPath = dirname(dir);
  let asr: AsrPipeline;
  try {
    asr = await tf.pipeline('automatic-speech-recognition', basename(dir));
  } catch (err) {
    throw new TesseraError('VOICE_UNAVAILABLE', `Whisper is not available: the model in ${dir} does not load: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  const language = options.language ?? 'en';
  const english = basename(dir).endsWith('.en');
  return {
    id: 'whisper',
    async transcribe(pcm16k, opts = {}): Promise<Transcript> {
      if (opts.signal?.aborted) throw new TesseraError('RUN_CANCELLED', 'recognition was cancelled');
      const started = nowMs();
      if (pcm16k.length === 0) return { engine: 'whisper', text: '', ms: 0 };
      const out = await asr(Float32Array.from(pcm16k, (s) => s / 32768), english ? {} : { language, task: 'transcribe' });
      const text = (Array.isArray(out) ? out.map((o) => o.text).join(' ') : out.text).trim().toLowerCase();
      return { engine: 'whisper', text, ms: nowMs() - started };
    },
    async dispose() {
      await asr.dispose?.();
    },
  };
}
