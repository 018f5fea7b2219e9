import { EventEmitter } from 'node:events';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
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
const created: Array<{ options: Record<string, unknown>; webContents: FakeWebContents; loaded?: string; menuRemoved: boolean }> = [];
/** Every Menu.setApplicationMenu call, in order (`null` removes the menu). */
const applicationMenus: unknown[] = [];
const handlers = new Map<string, (...args: unknown[]) => unknown>();
const forked: Array<{ file: string; args: string[]; options: Record<string, unknown>; child: EventEmitter & { posted: unknown[]; killed: boolean } }> = [];

vi.mock('electron', () => {
  class BrowserWindow extends EventEmitter {
    webContents = new FakeWebContents();
    constructor(options: Record<string, unknown>) {
      super();
      created.push({ options, webContents: this.webContents, menuRemoved: false });
    }
    loadFile(file: string) {
      created.at(-1)!.loaded = `file://${file}`;
      return Promise.resolve();
    }
    loadURL(url: string) {
      created.at(-1)!.loaded = url;
      return Promise.resolve();
    }
    removeMenu() {
      created.at(-1)!.menuRemoved = true;
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
    Menu: {
      setApplicationMenu: (menu: unknown) => applicationMenus.push(menu),
      buildFromTemplate: (template: unknown[]) => ({ template }),
    },
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
const { APP_INDEX_URL, handleAppScheme, registerAppScheme, serveAppFile } = await import('../../main/electron/app-protocol.js');
const { lockedMenu, lockedShortcut } = await import('../../main/electron/lockdown.js');

const rendererIndexUrl = APP_INDEX_URL;
const paths = { preloadPath: '/app/out/preload/preload.cjs' };

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
    expect(win).toBeDefined();
  });

  it('loads the UI from app://tessera/index.html, never from file://', () => {
    createMainWindow({ kiosk: false }, paths);
    expect(created.at(-1)!.loaded).toBe('app://tessera/index.html');
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
    expect(navigate('file:///app/out/renderer/index.html')).toBe(true);
    expect(navigate('app://evil/index.html')).toBe(true);
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
    expect(isAppUrl('app://tessera/index.html#/verify', rendererIndexUrl)).toBe(true);
    expect(isAppUrl('app://tessera/other.html', rendererIndexUrl)).toBe(false);
    expect(isAppUrl('app://tessera.evil/index.html', rendererIndexUrl)).toBe(false);
    expect(isAppUrl('file:///app/out/renderer/index.html', rendererIndexUrl)).toBe(false);
    expect(isAppUrl('not a url', rendererIndexUrl)).toBe(false);
  });
});

describe('Electron kiosk and packaged builds: a locked shell', () => {
  type Key = { type?: string; key: string; code: string; control?: boolean; meta?: boolean; shift?: boolean; alt?: boolean };
  /** Send a key press through the window's before-input-event listeners, as Electron does; true when dropped. */
  const press = (contents: FakeWebContents, k: Key) => {
    const event = { prevented: false, preventDefault() { this.prevented = true; } };
    contents.emit('before-input-event', event, { type: 'keyDown', control: false, meta: false, shift: false, alt: false, ...k });
    return event.prevented;
  };
  const DEVTOOLS_AND_RELOAD: Key[] = [
    { key: 'I', code: 'KeyI', control: true, shift: true },
    { key: 'J', code: 'KeyJ', control: true, shift: true },
    { key: 'C', code: 'KeyC', control: true, shift: true },
    { key: 'F12', code: 'F12' },
    { key: 'i', code: 'KeyI', meta: true, alt: true },
    { key: 'r', code: 'KeyR', control: true },
    { key: 'R', code: 'KeyR', control: true, shift: true },
    { key: 'r', code: 'KeyR', meta: true },
    { key: 'F5', code: 'F5' },
    { key: 'F5', code: 'F5', control: true },
    // A Cyrillic layout: the same physical keys.
    { key: 'Ш', code: 'KeyI', control: true, shift: true },
    { key: 'к', code: 'KeyR', control: true },
  ];
  const LEAVING: Key[] = [
    { key: 'w', code: 'KeyW', control: true },
    { key: 'q', code: 'KeyQ', control: true },
    { key: 'q', code: 'KeyQ', meta: true },
    { key: 'F11', code: 'F11' },
    { key: 'F4', code: 'F4', alt: true },
    { key: 'h', code: 'KeyH', meta: true },
    { key: 'm', code: 'KeyM', meta: true },
  ];
  const TYPING: Key[] = [
    { key: 'a', code: 'KeyA' },
    { key: 'R', code: 'KeyR', shift: true },
    { key: 'Enter', code: 'Enter' },
    { key: 'c', code: 'KeyC', control: true },
    { key: 'v', code: 'KeyV', control: true },
    { key: 'i', code: 'KeyI', control: true },
  ];

  it('in --kiosk has no application menu, DevTools off, and drops the DevTools, reload and leaving keys', () => {
    applicationMenus.length = 0;
    createMainWindow({ kiosk: true }, paths);
    const win = created.at(-1)!;
    expect(applicationMenus).toEqual([null]);
    expect(win.menuRemoved).toBe(true);
    expect((win.options['webPreferences'] as Record<string, unknown>)['devTools']).toBe(false);
    for (const k of [...DEVTOOLS_AND_RELOAD, ...LEAVING]) expect(press(win.webContents, k), JSON.stringify(k)).toBe(true);
    for (const k of TYPING) expect(press(win.webContents, k), JSON.stringify(k)).toBe(false);
    // Key releases are not shortcuts.
    expect(press(win.webContents, { type: 'keyUp', key: 'F12', code: 'F12' })).toBe(false);
  });

  it('in a packaged build (not a kiosk) has no DevTools and no reload, but keeps the keys that close the window', () => {
    applicationMenus.length = 0;
    createMainWindow({ kiosk: false, packaged: true }, paths);
    const win = created.at(-1)!;
    expect(applicationMenus).toEqual([lockedMenu({ buildFromTemplate: (template: unknown[]) => ({ template }) } as never, { kiosk: false }, process.platform)]);
    expect((win.options['webPreferences'] as Record<string, unknown>)['devTools']).toBe(false);
    for (const k of DEVTOOLS_AND_RELOAD) expect(press(win.webContents, k), JSON.stringify(k)).toBe(true);
    for (const k of [...LEAVING, ...TYPING]) expect(press(win.webContents, k), JSON.stringify(k)).toBe(false);
  });

  it("leaves a developer's unpackaged window its default menu and DevTools", () => {
    applicationMenus.length = 0;
    createMainWindow({ kiosk: false, packaged: false }, paths);
    const win = created.at(-1)!;
    expect(applicationMenus).toEqual([]);
    expect(win.menuRemoved).toBe(false);
    expect((win.options['webPreferences'] as Record<string, unknown>)['devTools']).toBe(true);
    expect(win.webContents.listenerCount('before-input-event')).toBe(0);
  });

  it('keeps only the app and Edit menus on macOS outside the kiosk, and no menu anywhere else', () => {
    const Menu = { buildFromTemplate: (template: unknown[]) => ({ template }) } as never;
    expect(lockedMenu(Menu, { kiosk: false }, 'darwin')).toEqual({ template: [{ role: 'appMenu' }, { role: 'editMenu' }] });
    expect(lockedMenu(Menu, { kiosk: true }, 'darwin')).toBeNull();
    expect(lockedMenu(Menu, { kiosk: false }, 'linux')).toBeNull();
    expect(lockedMenu(Menu, { kiosk: false }, 'win32')).toBeNull();
    expect(lockedShortcut({ type: 'keyDown', key: 'F', code: 'KeyF', control: true, meta: true, shift: false, alt: false }, { kiosk: true })).toBe('leave');
  });
});

describe('app://tessera: the UI served from its own origin', () => {
  // A real renderer folder with a secret beside it (outside), and a symbolic link inside pointing at the secret.
  const base = tempDir('tessera-app-protocol-', 'file');
  const root = join(base, 'renderer');
  mkdirSync(join(root, 'assets'), { recursive: true });
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>Tessera</title>');
  writeFileSync(join(root, 'assets', 'index-abc.js'), 'export const x = 1;');
  writeFileSync(join(root, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  writeFileSync(join(base, 'secret.txt'), 'DEVICE-KEY-SECRET');
  symlinkSync(join(base, 'secret.txt'), join(root, 'assets', 'link.js'));
  const get = (url: string, method = 'GET') => serveAppFile({ url, method }, root);

  it('registers app: as a standard, secure scheme before ready, without CORS or CSP bypass', () => {
    const registered: unknown[] = [];
    registerAppScheme({ registerSchemesAsPrivileged: (schemes: unknown[]) => registered.push(...schemes) } as never);
    expect(registered).toEqual([{ scheme: 'app', privileges: { standard: true, secure: true, supportFetchAPI: true } }]);
  });

  it('serves the renderer files with their types and the CSP on every answer', async () => {
    let handler: ((request: { url: string; method: string }) => Promise<Response>) | undefined;
    handleAppScheme({ handle: (scheme: string, h: typeof handler) => scheme === 'app' && (handler = h) } as never, root);
    const index = await handler!({ url: 'app://tessera/index.html', method: 'GET' });
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(index.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    expect(index.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await index.text()).toContain('<title>Tessera</title>');
    expect(await (await get('app://tessera/')).text()).toContain('<title>Tessera</title>');
    const script = await get('app://tessera/assets/index-abc.js');
    expect([script.status, script.headers.get('content-type'), await script.text()]).toEqual([200, 'text/javascript; charset=utf-8', 'export const x = 1;']);
    expect((await get('app://tessera/favicon.svg')).headers.get('content-type')).toBe('image/svg+xml');
    const head = await get('app://tessera/index.html', 'HEAD');
    expect([head.status, head.headers.get('content-length'), await head.text()]).toEqual([200, '37', '']);
  });

  it('refuses every way out of the renderer folder, and never answers with the file outside', async () => {
    const attempts: Array<[string, number]> = [
      ['app://tessera/..%2fsecret.txt', 400],
      ['app://tessera/assets/..%2f..%2fsecret.txt', 400],
      ['app://tessera/%2e%2e%2fsecret.txt', 400],
      ['app://tessera/assets%2f..%2f..%2fsecret.txt', 400],
      ['app://tessera/..%5csecret.txt', 400],
      ['app://tessera/assets%5c..%5c..%5csecret.txt', 400],
      ['app://tessera/%2fetc%2fpasswd', 400],
      ['app://tessera//etc/passwd', 400],
      ['app://tessera/index.html%00.js', 400],
      ['app://tessera/%E0%A4%A', 400],
      // Dot segments the URL parser resolves stay inside: not found, not the secret.
      ['app://tessera/../secret.txt', 404],
      ['app://tessera/%2e%2e/secret.txt', 404],
      // A link inside the folder to a file outside it.
      ['app://tessera/assets/link.js', 404],
      ['app://tessera/assets', 404],
      ['app://tessera/missing.js', 404],
      ['app://other/index.html', 404],
      ['https://tessera/index.html', 404],
    ];
    for (const [url, status] of attempts) {
      const answer = await get(url);
      const body = await answer.text();
      expect([url, answer.status], body).toEqual([url, status]);
      expect(body).not.toContain('DEVICE-KEY-SECRET');
      expect(answer.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    }
    expect((await get('app://tessera/index.html', 'POST')).status).toBe(405);
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
      device: { keyid: runtime.deviceKey.keyid },
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
    // The old file:// page, or any file:// page, is not the app any more.
    for (const url of ['file:///app/out/renderer/index.html', 'app://tessera/other.html', 'app://evil/index.html']) {
      ui.mainFrame.url = url;
      expect((await invoke(fromUi(), 'info')).error?.code, url).toBe('IPC_SENDER_REJECTED');
    }
    ui.mainFrame.url = `${rendererIndexUrl}#/verify`;
    expect((await invoke(fromUi(), 'info')).ok).toBe(true);
    const subframe = { url: rendererIndexUrl };
    expect((await invoke({ sender: ui, senderFrame: subframe }, 'info')).error?.code).toBe('IPC_SENDER_REJECTED');
    expect((await invoke({ sender: ui, senderFrame: null }, 'info')).error?.code).toBe('IPC_SENDER_REJECTED');
  });

  it("answers this device's key id, the signer of its bundles", async () => {
    expect(await invoke(fromUi(), 'device')).toEqual({ ok: true, value: { keyid: runtime.deviceKey.keyid } });
    expect(runtime.deviceKey.keyid).toMatch(/^b3:[0-9a-f]{64}$/);
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

describe('packaging', () => {
  it('sets the Electron fuses: no RunAsNode, NODE_OPTIONS or --inspect; the app from app.asar only, checked', () => {
    const config = parseYaml(readFileSync(new URL('../../electron-builder.yml', import.meta.url), 'utf8')) as Record<string, unknown>;
    expect(config['electronFuses']).toMatchObject({
      runAsNode: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
      grantFileProtocolExtraPrivileges: false,
    });
    expect(config['asar']).toBe(true);
    // The packaged app holds what main/host/paths.ts reads at run time.
    expect(config['files']).toEqual(expect.arrayContaining(['package.json', 'out/main/**', 'out/preload/**', 'out/renderer/**', 'out/plugins/**', 'resources/**']));
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
