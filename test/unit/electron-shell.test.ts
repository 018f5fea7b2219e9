import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CONTENT_SECURITY_POLICY } from '../../main/common/csp.js';
import { createOperations } from '../../main/host/operations.js';
import { createRuntime } from '../../main/runtime/index.js';
import type { Runtime } from '../../main/runtime/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { tempDir } from '../helpers/tmp.js';

// The Electron binary cannot exist here: `electron` is mocked with objects that record what the shell does to
// them, speaking Electron's real API shapes (BrowserWindow options, webContents events, session handlers, ipcMain).
class FakeWebContents extends EventEmitter {
  windowOpenHandler: ((details: { url: string }) => { action: string }) | undefined;
  mainFrame = { url: '' };
  sent: Array<[string, unknown]> = [];
  setWindowOpenHandler(handler: (details: { url: string }) => { action: string }) {
    this.windowOpenHandler = handler;
  }
  isDestroyed() {
    return false;
  }
  send(channel: string, payload: unknown) {
    this.sent.push([channel, payload]);
  }
}
const created: Array<{ options: Record<string, unknown>; webContents: FakeWebContents; loaded?: string }> = [];
const handlers = new Map<string, (...args: unknown[]) => unknown>();
const forked: Array<{ file: string; args: string[]; options: Record<string, unknown>; child: EventEmitter & { posted: unknown[]; killed: boolean } }> = [];

vi.mock('electron', () => {
  class BrowserWindow extends EventEmitter {
    webContents = new FakeWebContents();
    constructor(options: Record<string, unknown>) {
      super();
      created.push({ options, webContents: this.webContents });
    }
    loadFile(file: string) {
      created.at(-1)!.loaded = file;
      return Promise.resolve();
    }
    show() {}
  }
  class UtilityProcess extends EventEmitter {
    pid = 4242;
    posted: unknown[] = [];
    killed = false;
    postMessage(m: unknown) {
      this.posted.push(m);
    }
    kill() {
      this.killed = true;
      this.emit('exit', 137);
      return true;
    }
  }
  return {
    BrowserWindow,
    utilityProcess: {
      fork: (file: string, args: string[], options: Record<string, unknown>) => {
        const child = new UtilityProcess();
        forked.push({ file, args, options, child });
        return child;
      },
    },
    ipcMain: {
      handle: (channel: string, fn: (...args: unknown[]) => unknown) => handlers.set(channel, fn),
      removeHandler: (channel: string) => handlers.delete(channel),
    },
  };
});

const { secureWebPreferences, hardenSession, hardenWebContents, isAppUrl } = await import('../../main/electron/security.js');
const { createMainWindow, parseShellFlags } = await import('../../main/electron/window.js');
const { registerIpc, IPC_INVOKE, IPC_SUBSCRIBE, IPC_EVENT } = await import('../../main/electron/ipc.js');
const { utilityProcessLauncher } = await import('../../main/electron/sandbox-launcher.js');

const rendererIndex = '/app/out/renderer/index.html';
const rendererIndexUrl = pathToFileURL(rendererIndex).href;
const paths = { rendererIndex, rendererIndexUrl, preloadPath: '/app/out/preload/preload.cjs' };

describe('Electron window security checklist', () => {
  it('turns on context isolation and the sandbox and keeps Node out of the renderer', () => {
    const win = createMainWindow({ kiosk: false }, paths);
    const prefs = created.at(-1)!.options['webPreferences'] as Record<string, unknown>;
    expect(prefs).toMatchObject({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      preload: paths.preloadPath,
    });
    expect(prefs).toEqual(secureWebPreferences(paths.preloadPath));
    expect(created.at(-1)!.loaded).toBe(rendererIndex);
    expect(win).toBeDefined();
  });

  it('opens full-screen in kiosk mode with --kiosk', () => {
    createMainWindow({ kiosk: true }, paths);
    expect(created.at(-1)!.options).toMatchObject({ kiosk: true, fullscreen: true });
    expect(parseShellFlags(['--kiosk', '--port=9000', '--data=/d'], {})).toEqual({ kiosk: true, port: 9000, host: '127.0.0.1', data: '/d' });
  });

  it('blocks navigation away from the app and every new window or webview', () => {
    const contents = new FakeWebContents();
    hardenWebContents(contents as never, rendererIndexUrl);
    const navigate = (url: string) => {
      const event = { prevented: false, preventDefault() { this.prevented = true; } };
      contents.emit('will-navigate', event, url);
      return event.prevented;
    };
    expect(navigate('https://evil.example/')).toBe(true);
    expect(navigate('file:///etc/passwd')).toBe(true);
    expect(navigate(rendererIndexUrl + '#/ops')).toBe(false);
    expect(contents.windowOpenHandler!({ url: 'https://example.com' })).toEqual({ action: 'deny' });
    const webview = { prevented: false, preventDefault() { this.prevented = true; } };
    contents.emit('will-attach-webview', webview);
    expect(webview.prevented).toBe(true);
  });

  it('denies every permission request and sets the strict CSP on every response', () => {
    let permissionHandler: ((wc: unknown, permission: string, cb: (granted: boolean) => void) => void) | undefined;
    let checkHandler: (() => boolean) | undefined;
    let headersHandler: ((details: { responseHeaders: Record<string, string[]> }, cb: (r: { responseHeaders: Record<string, string[]> }) => void) => void) | undefined;
    hardenSession({
      setPermissionRequestHandler: (h: typeof permissionHandler) => (permissionHandler = h),
      setPermissionCheckHandler: (h: typeof checkHandler) => (checkHandler = h),
      webRequest: { onHeadersReceived: (h: typeof headersHandler) => (headersHandler = h) },
    } as never);
    for (const permission of ['media', 'geolocation', 'notifications', 'clipboard-read']) {
      let granted: boolean | undefined;
      permissionHandler!({}, permission, (g) => (granted = g));
      expect(granted, permission).toBe(false);
    }
    expect(checkHandler!()).toBe(false);
    let headers: Record<string, string[]> = {};
    headersHandler!({ responseHeaders: { 'X-Other': ['1'] } }, (r) => (headers = r.responseHeaders));
    expect(headers['Content-Security-Policy']).toEqual([CONTENT_SECURITY_POLICY]);
    expect(CONTENT_SECURITY_POLICY).toContain("script-src 'self'");
    expect(CONTENT_SECURITY_POLICY).not.toContain('unsafe');
    expect(headers['X-Other']).toEqual(['1']);
  });

  it('recognises only the app page as the app', () => {
    expect(isAppUrl(rendererIndexUrl, rendererIndexUrl)).toBe(true);
    expect(isAppUrl('file:///app/out/renderer/other.html', rendererIndexUrl)).toBe(false);
    expect(isAppUrl('not a url', rendererIndexUrl)).toBe(false);
  });
});

describe('Electron IPC bridge', () => {
  let runtime: Runtime;
  let ui: FakeWebContents;
  let dispose: () => unknown;

  beforeEach(async () => {
    runtime = await createRuntime({ dataDir: tempDir(), shell: 'electron', logger: createMemoryLogger() });
    ui = new FakeWebContents();
    ui.mainFrame.url = rendererIndexUrl;
    const registration = registerIpc({ handle: (c: string, f: never) => handlers.set(c, f), removeHandler: (c: string) => handlers.delete(c) } as never, {
      operations: createOperations(runtime),
      bus: runtime.bus,
      rendererIndexUrl,
      target: () => ui as never,
    });
    dispose = () => registration.dispose();
  });
  afterEach(async () => {
    await dispose();
    await runtime.close();
  });

  const fromUi = () => ({ sender: ui, senderFrame: ui.mainFrame });
  const invoke = async (event: unknown, ...args: unknown[]) => (await handlers.get(IPC_INVOKE)!(event, ...args)) as { ok: boolean; value?: unknown; error?: { code: string } };

  it('serves the UI frame and refuses any other sender', async () => {
    expect(await invoke(fromUi(), 'info')).toMatchObject({ ok: true, value: { shell: 'electron' } });
    const stranger = { url: 'https://evil.example/' };
    expect(await invoke({ sender: ui, senderFrame: stranger }, 'info')).toEqual({ ok: false, error: expect.objectContaining({ code: 'IPC_SENDER_REJECTED' }) });
    const subframe = { url: rendererIndexUrl };
    expect((await invoke({ sender: ui, senderFrame: subframe }, 'info')).error?.code).toBe('IPC_SENDER_REJECTED');
    expect((await invoke({ sender: ui, senderFrame: null }, 'info')).error?.code).toBe('IPC_SENDER_REJECTED');
  });

  it('validates arguments with the HTTP schemas and never throws across the bridge', async () => {
    expect(await invoke(fromUi(), 'publishEvent', { topic: 'ipc.ok', payload: { a: 1 } })).toMatchObject({ ok: true, value: { topic: 'ipc.ok' } });
    expect((await invoke(fromUi(), 'publishEvent', { topic: 'ipc.ok', extra: true })).error?.code).toBe('VALIDATION_FAILED');
    expect((await invoke(fromUi(), 'publishEvent', { topic: 'bad..topic' })).error?.code).toBe('TOPIC_INVALID');
    expect((await invoke(fromUi(), 'queryEvents', { limit: 'ten' })).error?.code).toBe('VALIDATION_FAILED');
    expect((await invoke(fromUi(), 'rm -rf', {})).error?.code).toBe('NOT_FOUND');
    expect((await invoke(fromUi(), 'testPlugin', { plugin: 'nope', input: {} })).error?.code).toBe('PLUGIN_NOT_FOUND');
    expect((await invoke(fromUi(), 'testPlugin', { input: {}, shell: 'rm' })).error?.code).toBe('VALIDATION_FAILED');
    expect(await invoke(fromUi(), 'listPlugins')).toEqual({ ok: true, value: [] });
    const page = (await invoke(fromUi(), 'queryEvents', { topic: 'ipc' })).value as { events: Array<{ topic: string }> };
    expect(page.events.map((e) => e.topic)).toEqual(['ipc.ok']);
  });

  it('pushes live events to the UI for the patterns it subscribed to', () => {
    const subscribe = handlers.get(IPC_SUBSCRIBE)!;
    expect(subscribe(fromUi(), { type: 'subscribe', patterns: ['live.*'] })).toMatchObject({ ok: true });
    expect(subscribe(fromUi(), { type: 'subscribe', patterns: ['a..b'] })).toMatchObject({ ok: false, error: { code: 'TOPIC_INVALID' } });
    runtime.bus.publish('live.one', 1);
    runtime.bus.publish('dead.one', 2);
    expect(ui.sent.map(([channel, e]) => [channel, (e as { topic: string }).topic])).toEqual([[IPC_EVENT, 'live.one']]);
  });
});

describe('Electron sandbox host launcher', () => {
  it('starts the sandbox host as a utilityProcess and relays the sandbox protocol both ways', () => {
    const handle = utilityProcessLauncher({ file: '/app/out/main/sandbox-host.js', execArgv: ['--no-node-snapshot', '--import', 'tsx'] });
    const { file, options, child } = forked.at(-1)!;
    expect(file).toBe('/app/out/main/sandbox-host.js');
    expect(options).toMatchObject({ execArgv: ['--no-node-snapshot'], serviceName: 'Tessera sandbox host' });
    expect(handle.pid).toBe(4242);
    handle.send({ t: 'ping', id: 7 });
    expect(child.posted).toEqual([{ t: 'ping', id: 7 }]);
    const got: unknown[] = [];
    handle.onMessage((m) => got.push(m));
    child.emit('message', { t: 'ready', pid: 4242 });
    expect(got).toEqual([{ t: 'ready', pid: 4242 }]);
    let exit: unknown;
    handle.onExit((code, signal) => (exit = [code, signal]));
    handle.kill();
    expect(child.killed).toBe(true);
    expect(exit).toEqual([137, null]);
  });
});

describe('layering', () => {
  it('keeps electron out of the runtime and host (lint rule, checked here against the sources too)', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const walk = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(join(dir, d.name)) : [join(dir, d.name)]));
    const root = new URL('../../main/', import.meta.url).pathname;
    for (const file of [...walk(join(root, 'runtime')), ...walk(join(root, 'host')), ...walk(join(root, 'common'))]) {
      expect(readFileSync(file, 'utf8'), file).not.toMatch(/from ['"]electron['"]/);
    }
  });
});
