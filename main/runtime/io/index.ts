/**
 * Voice and text I/O routing (seed 001 §3, issue 6 point 1): the router, its channel adapters and its store
 * (messages with their fate, the persistent `inbox.local`, open questions). Locks live in
 * ../scenarios/locks.ts (one manager per runtime, shared with the scenario engine).
 */
export { DEFAULT_IDLE_RESET_MS, DIALOGUE_CONTEXT_SAMPLE, IN_CHANNELS, MAX_IO_TEXT, OUT_CHANNELS, SESSION_ID_PATTERN, STRONG_INTENT_SCORE, createIoRouter, idleResetFromEnv } from './router.js';
export type { AwaitOptions, ChannelStatus, ConverseAnswer, DialogueContext, HearOutcome, SessionStart, InChannel, InputOptions, InputOutcome, IoInput, IoMatrix, IoRouter, IoRouterOptions, IoStatus, SendOptions } from './router.js';
export type { UiClient, UiMessage, VoiceSetup } from './channels.js';
export { createDefaultVoice } from './voice-setup.js';
export { ANSWER_KINDS, fitsExpectation } from './expects.js';
export type { AnswerKind } from './expects.js';
export { DEFAULT_LANGUAGE, builtinMessagesDir, createMessageCatalogue, loadMessageCatalogue } from './messages.js';
export type { MessageCatalogue } from './messages.js';
export type { VoiceSettings } from './voice-setup.js';
export { createPushRecorder, MAX_CHUNK_BYTES, MAX_STREAM_SECONDS } from './stream.js';
export type { PushRecorder } from './stream.js';
export type { IoMessage, IoQuestion, IoSession, MessageState, SessionEndReason } from './store.js';
