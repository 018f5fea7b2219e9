/**
 * Roles over Electron IPC (issue 13 §1.2): a window opened with --kiosk holds the traveller's role, every IPC method
 * is refused unless the window holds one of its roles, and the operator PIN unlocks the rest for a while.
 * The Electron binary cannot run here: the registration gets a fake ipcMain that speaks its protocol.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IPC_ACCESS, IPC_INVOKE, IPC_SUBSCRIBE, createWindowAccess, registerIpc } from '../../main/electron/ipc.js';
import { createCredentials, setOperatorPin } from '../../main/host/credentials.js';
import { createOperations } from '../../main/host/operations.js';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { tempDir } from '../helpers/tmp.js';

const rendererIndexUrl = 'app://tessera/index.html';
const handlers = new Map<string, (...args: unknown[]) => unknown>();
const mainFrame = { url: rendererIndexUrl };
const ui = { mainFrame, isDestroyed: () => false, send: () => undefined };
const fromUi = { sender: ui, senderFrame: mainFrame };
let runtime: Runtime;
let dataDir: string;
let dispose: () => unknown;
let clock = 0;

beforeEach(async () => {
  dataDir = tempDir();
  clock = Date.now();
  runtime = await createRuntime({ dataDir, shell: 'electron', logger: createMemoryLogger(), voice: false });
  const credentials = createCredentials({ dataDir, deviceToken: 'device-token-0123456789abcdefghij', tenantForToken: () => undefined, now: () => clock });
  const registration = registerIpc({ handle: (c: string, f: never) => handlers.set(c, f), removeHandler: (c: string) => handlers.delete(c) } as never, {
    operations: createOperations(runtime),
    bus: runtime.bus,
    rendererIndexUrl,
    target: () => ui as never,
    io: runtime.io,
    access: createWindowAccess({ kiosk: true, credentials, now: () => clock }),
  });
  dispose = () => registration.dispose();
});
afterEach(async () => {
  await dispose();
  await runtime.close();
});

type Result = { ok: boolean; value?: Record<string, unknown>; error?: { code: string; message: string; details?: Record<string, unknown> } };
const invoke = async (method: string, arg?: unknown) => (await handlers.get(IPC_INVOKE)!(fromUi, method, arg)) as Result;
const subscribe = async (patterns: string[]) => (await handlers.get(IPC_SUBSCRIBE)!(fromUi, { type: 'subscribe', patterns })) as Result;

describe('roles over IPC', () => {
  it('a kiosk window holds the traveller role: the Journey Guide works, every operator and author method is FORBIDDEN', async () => {
    expect(await invoke('session')).toEqual({ ok: true, value: { kind: 'role', roles: ['traveller'], pin_set: false } });
    expect((await invoke('ioStatus')).ok).toBe(true);
    const info = await invoke('info');
    expect(info.ok).toBe(true);
    expect(info.value).not.toHaveProperty('data_dir');
    for (const method of Object.keys(IPC_ACCESS).filter((m) => !IPC_ACCESS[m]!.includes('traveller'))) {
      expect((await invoke(method, {})).error?.code, method).toBe('FORBIDDEN');
    }
    expect((await invoke('noSuchMethod')).error?.code).toBe('NOT_FOUND');
    expect((await subscribe(['**'])).error?.code).toBe('FORBIDDEN');
    expect((await subscribe(['io.**'])).ok).toBe(true);
  });

  it('unlocks every method with the operator PIN until it expires or is locked', async () => {
    expect((await invoke('unlock', { pin: '2580' })).error?.code).toBe('PIN_NOT_SET');
    await setOperatorPin(dataDir, '2580');
    expect(await invoke('unlock', { pin: '0000' })).toMatchObject({ ok: false, error: { code: 'PIN_INVALID', details: { attempts_left: 4 } } });
    expect((await invoke('unlock', { pin: 2580 })).error?.code).toBe('VALIDATION_FAILED');
    expect((await invoke('unlock', { pin: '2580' })).ok).toBe(true);
    expect(await invoke('session')).toMatchObject({ value: { kind: 'unlocked', roles: ['traveller', 'staff', 'author', 'operator'] } });
    expect((await invoke('queryEvents', {})).ok).toBe(true);
    expect((await subscribe(['**'])).ok).toBe(true);
    clock += 15 * 60_000;
    expect((await invoke('queryEvents', {})).error?.code).toBe('FORBIDDEN');
    expect((await invoke('unlock', { pin: '2580' })).ok).toBe(true);
    expect((await invoke('lock')).ok).toBe(true);
    expect((await invoke('listScenarios')).error?.code).toBe('FORBIDDEN');
  });
});
