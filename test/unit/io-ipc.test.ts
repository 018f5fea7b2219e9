/**
 * The Journey Guide's I/O over Electron IPC (main/electron/ipc-io.ts) against a real runtime with voice off:
 * validated arguments, the ui presence that follows the window's io.* subscription, push-to-talk refusals.
 * The Electron binary cannot run here: the IPC registration gets a fake ipcMain that speaks its protocol.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IPC_INVOKE, IPC_SUBSCRIBE, registerIpc } from '../../main/electron/ipc.js';
import { createOperations } from '../../main/host/operations.js';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { scenario } from '../helpers/scenarios.js';
import { tempDir } from '../helpers/tmp.js';

const rendererIndexUrl = 'file:///app/out/renderer/index.html';
const handlers = new Map<string, (...args: unknown[]) => unknown>();
let runtime: Runtime;
let dispose: () => unknown;
const mainFrame = { url: rendererIndexUrl };
const ui = { mainFrame, isDestroyed: () => false, send: () => undefined };
const fromUi = { sender: ui, senderFrame: mainFrame };

beforeEach(async () => {
  runtime = await createRuntime({ dataDir: tempDir(), shell: 'electron', logger: createMemoryLogger(), voice: false });
  const registration = registerIpc({ handle: (c: string, f: never) => handlers.set(c, f), removeHandler: (c: string) => handlers.delete(c) } as never, {
    operations: createOperations(runtime),
    bus: runtime.bus,
    rendererIndexUrl,
    target: () => ui as never,
    io: runtime.io,
  });
  dispose = () => registration.dispose();
});
afterEach(async () => {
  await dispose();
  await runtime.close();
});

const invoke = async (method: string, arg?: unknown, event: unknown = fromUi) => (await handlers.get(IPC_INVOKE)!(event, method, arg)) as { ok: boolean; value?: Record<string, unknown>; error?: { code: string; message: string } };
const subscribe = async (patterns: string[]) => handlers.get(IPC_SUBSCRIBE)!(fromUi, { type: 'subscribe', patterns });

describe('Journey Guide I/O over IPC', () => {
  it('reports the I/O status and refuses other frames', async () => {
    expect(await invoke('ioStatus')).toMatchObject({ ok: true, value: { voice_enabled: false, voice_disabled_reason: expect.stringContaining('turned off') } });
    expect((await invoke('ioStatus', undefined, { sender: ui, senderFrame: { url: 'https://evil.example/' } })).error?.code).toBe('IPC_SENDER_REJECTED');
  });

  it('validates text input with the HTTP schema and answers questions', async () => {
    expect((await invoke('ioInput', { text: '' })).error?.code).toBe('VALIDATION_FAILED');
    expect((await invoke('ioInput', { text: 'hi', shell: 'rm -rf /' })).error?.code).toBe('VALIDATION_FAILED');
    expect((await invoke('ioInput', { text: 'Ada', run_id: 'r', step: 's' })).error?.code).toBe('IO_ASK_NOT_FOUND');
    runtime.scenarios.register(scenario('ipc_ask', [{ name: 'ask', action: 'io.ask', with: { prompt: 'Name?' }, output: 'name' }]));
    const runId = runtime.scenarios.run('ipc_ask');
    for (const end = Date.now() + 20_000; runtime.io.status().questions.length === 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
    expect(await invoke('ioInput', { text: 'Ada' })).toEqual({ ok: true, value: { kind: 'answer', text: 'Ada', channel: 'text', run_id: runId, step: 'ask' } });
    expect((await runtime.scenarios.wait(runId, 5000)).bag).toEqual({ name: 'Ada' });
  });

  it('counts the window as a ui channel only while it subscribes to io events', async () => {
    expect(runtime.io.status().ui_clients).toBe(0);
    await subscribe(['io.**']);
    expect(runtime.io.status().ui_clients).toBe(1);
    expect((await runtime.io.send('ui', 'shown in the window')).state).toBe('delivered');
    await subscribe(['scenario.**']);
    expect(runtime.io.status().ui_clients).toBe(0);
    expect((await runtime.io.send('ui', 'nobody looks')).state).toBe('inboxed');
  });

  it('starts dialogue sessions and shows the window the one it started last: its messages, not another traveller\'s', async () => {
    expect((await invoke('ioSession', { end: 'bad' })).error?.code).toBe('VALIDATION_FAILED');
    const first = await invoke('ioSession', {});
    expect(first).toMatchObject({ ok: true, value: { session: { id: expect.stringMatching(/^ses_/) }, ended: null } });
    const a = (first.value!['session'] as { id: string }).id;
    await subscribe(['io.**']);
    expect((await runtime.io.send('ui', 'for A', { session: a })).state).toBe('delivered');
    const second = await invoke('ioSession', { end: a });
    expect(second.value).toMatchObject({ ended: { id: a, reason: 'new_traveller' } });
    const b = (second.value!['session'] as { id: string }).id;
    expect((await invoke('ioInput', { text: 'hi', session: a })).error?.code).toBe('IO_SESSION_ENDED');
    const other = runtime.io.startSession().session.id;
    expect((await runtime.io.send('ui', 'for another kiosk', { session: other })).state).toBe('inboxed');
    expect((await runtime.io.send('ui', 'for B', { session: b })).state).toBe('delivered');
    expect((await invoke('ioInput', { text: 'hi', session: b })).value).toMatchObject({ kind: 'unrecognized', session: b });
  });

  it('says why push-to-talk cannot listen, and validates its argument', async () => {
    expect((await invoke('ioTalk', { action: 'shout' })).error?.code).toBe('VALIDATION_FAILED');
    expect(await invoke('ioTalk', { action: 'stop' })).toEqual({ ok: true, value: { stopped: false } });
    expect(await invoke('ioTalk', { action: 'start' })).toEqual({ ok: false, error: expect.objectContaining({ code: 'VOICE_UNAVAILABLE', message: expect.stringContaining('No microphone here') }) });
  });
});
