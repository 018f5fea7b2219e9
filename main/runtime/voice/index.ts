/**
 * Voice I/O (issue 6 points 3–5): text-to-speech (espeak-ng, macOS/Windows `say`), audio sinks, microphone and
 * file recorders on one capture path, Silero voice activity detection, speech-to-text (pocketsphinx with a
 * JSGF grammar compiled from the intent rules; Whisper through transformers.js when a model folder is set),
 * and `createVoice`, the facade the I/O router (main/runtime/io) uses. Contracts: ./types.ts.
 */
export { FRAME_SAMPLES, SPEECH_SAMPLE_RATE } from './types.js';
export type {
  AudioSink,
  FileSink,
  ListenOptions,
  ListenResult,
  PartStatus,
  Playback,
  Recorder,
  SayOptions,
  SayResult,
  SpeechSegment,
  SttEngine,
  SttEngineId,
  Synthesis,
  SynthesizeOptions,
  TimelineEntry,
  Transcript,
  TranscribeOptions,
  TtsEngine,
  TtsEngineId,
  Vad,
  VadOptions,
  Voice,
  VoicePart,
  VoiceStatus,
  Wav,
} from './types.js';
export { createVoice } from './voice.js';
export type { CreateVoiceOptions, VoiceConfig, VoiceStack } from './voice.js';
export { detectSoundCard, detectVoiceTools } from './detect.js';
export type { SphinxModel, VoiceTools } from './detect.js';
export { createFileSink, createPlayerSink, speakerStatus } from './sink.js';
export type { FileSinkOptions } from './sink.js';
export { createFileRecorder, createMicRecorder, micStatus, pcmFrames } from './recorder.js';
export type { FileRecorderOptions, MicRecorderOptions } from './recorder.js';
export { createSileroVad } from './vad.js';
export type { SileroOptions } from './vad.js';
export { createTtsEngine } from './tts.js';
export { createPocketsphinxStt } from './pocketsphinx.js';
export { compileGrammar, grammarFiles } from './grammar.js';
export type { CompiledGrammar, GrammarFiles, SkippedRule } from './grammar.js';
export { createWhisperStt, whisperFolderProblem } from './whisper.js';
export { MAX_SPEECH_CHARS, validateSpeechText } from './text.js';
export { durationMs, encodeWav, parseWav, toMono } from './wav.js';
