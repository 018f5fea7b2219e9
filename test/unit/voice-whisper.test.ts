/**
 * Whisper's "absent" paths. The real model path cannot run here: no Whisper model is stored on this machine
 * and @huggingface/transformers is not installed, which is exactly what these tests check is reported.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TRANSFORMERS_PACKAGE, createWhisperStt, importTransformers, whisperFolderProblem } from '../../main/runtime/voice/whisper.js';
import type { TransformersModule } from '../../main/runtime/voice/whisper.js';
import { tempDir } from '../helpers/tmp.js';

function modelFolder(): string {
  const dir = join(tempDir(), 'whisper-tiny.en');
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  writeFileSync(join(dir, 'config.json'), '{"model_type":"whisper"}');
  return dir;
}

describe('Whisper model folder checks', () => {
  it('says no folder is configured, and which setting to set', () => {
    expect(whisperFolderProblem(undefined)).toEqual({ available: false, reason: 'no Whisper model folder is configured', fix: expect.stringContaining('whisperModelDir') });
  });

  it('says the folder does not exist, is not a model folder, or lacks ONNX weights', () => {
    const dir = tempDir();
    expect(whisperFolderProblem(join(dir, 'nope'))?.reason).toBe(`the Whisper model folder ${join(dir, 'nope')} does not exist`);
    expect(whisperFolderProblem(dir)?.reason).toBe(`${dir} is not a transformers.js model folder: it has no config.json`);
    writeFileSync(join(dir, 'config.json'), '{}');
    expect(whisperFolderProblem(dir)?.reason).toBe(`${dir} has no onnx/ folder with the model weights`);
    expect(whisperFolderProblem(modelFolder())).toBeUndefined();
  });

  it('refuses to create the engine with VOICE_UNAVAILABLE naming the problem and the fix', async () => {
    await expect(createWhisperStt({ modelDir: undefined })).rejects.toMatchObject({ code: 'VOICE_UNAVAILABLE', message: expect.stringMatching(/^Whisper is not available: no Whisper model folder is configured; set the voice config whisperModelDir/) });
  });
});

describe('transformers.js', () => {
  it('is not a dependency: importing it fails here, and the engine says how to install it', async () => {
    await expect(importTransformers()).rejects.toThrow();
    await expect(createWhisperStt({ modelDir: modelFolder() })).rejects.toMatchObject({
      code: 'VOICE_UNAVAILABLE',
      message: expect.stringContaining(`${TRANSFORMERS_PACKAGE} is not installed or does not load`),
    });
    await expect(createWhisperStt({ modelDir: modelFolder() })).rejects.toMatchObject({ message: expect.stringContaining('npm install @huggingface/transformers --onnxruntime-node-install=skip') });
  });

  it('is configured offline: no remote models, the model folder as the local model path', async () => {
    const dir = modelFolder();
    const env = { allowRemoteModels: true, allowLocalModels: false, localModelPath: '/models/' };
    const loaded: string[] = [];
    const module: TransformersModule = {
      env,
      pipeline: async (_task, model) => {
        loaded.push(model);
        return Object.assign(async (audio: Float32Array) => ({ text: ` Heard ${audio.length} samples ` }), {});
      },
    };
    const stt = await createWhisperStt({ modelDir: dir, importer: async () => module });
    expect(env).toEqual({ allowRemoteModels: false, allowLocalModels: true, localModelPath: join(dir, '..') });
    expect(loaded).toEqual(['whisper-tiny.en']);
    expect(await stt.transcribe(new Int16Array(1600))).toMatchObject({ engine: 'whisper', text: 'heard 1600 samples' });
    await expect(stt.transcribe(new Int16Array(10), { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'RUN_CANCELLED' });
  });

  it('reports a model that does not load', async () => {
    const module: TransformersModule = {
      env: { allowRemoteModels: true, allowLocalModels: true, localModelPath: '' },
      pipeline: () => Promise.reject(new Error('Could not locate file: onnx/encoder_model_quantized.onnx')),
    };
    await expect(createWhisperStt({ modelDir: modelFolder(), importer: async () => module })).rejects.toMatchObject({
      code: 'VOICE_UNAVAILABLE',
      message: expect.stringContaining('does not load: Could not locate file: onnx/encoder_model_quantized.onnx'),
    });
  });
});
