/** The Tessera window and the flags the Electron shell accepts. */
import { BrowserWindow, Menu } from 'electron';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_HOST, parsePort, resolveDataDir } from '../host/config.js';
import { APP_INDEX_URL } from './app-protocol.js';
import { lockDownWebContents, lockedMenu } from './lockdown.js';
import { hardenWebContents, secureWebPreferences } from './security.js';

export interface ShellFlags {
  port: number;
  host: string;
  data: string;
  kiosk: boolean;
}

/** Flags as `tessera start` passes them (`--port=N --host=H --data=DIR [--kiosk]`); Chromium's own are ignored. */
export function parseShellFlags(argv: string[], env: NodeJS.ProcessEnv): ShellFlags {
  const { values } = parseArgs({
    args: argv,
    options: { port: { type: 'string' }, host: { type: 'string' }, data: { type: 'string' }, kiosk: { type: 'boolean' } },
    strict: false,
    allowPositionals: true,
  });
  return {
    port: parsePort(typeof values['port'] === 'string' ? values['port'] : undefined),
    host: typeof values['host'] === 'string' ? values['host'] : DEFAULT_HOST,
    data: resolve(resolveDataDir(typeof values['data'] === 'string' ? values['data'] : undefined, env)),
    kiosk: values['kiosk'] === true,
  };
}

export interface WindowPaths {
  preloadPath: string;
}

/**
 * The one window, showing `app://tessera/index.html` (./app-protocol.ts serves it). `packaged` (app.isPackaged)
 * or `kiosk` locks the shell (./lockdown.ts): no default menu, DevTools off, reload and DevTools keys dropped, and
 * in the kiosk the keys that leave it too. The application menu is app-wide, so it is set here, once per window.
 */
export function createMainWindow(flags: Pick<ShellFlags, 'kiosk'> & { packaged?: boolean }, paths: WindowPaths): BrowserWindow {
  const locked = flags.kiosk || flags.packaged === true;
  if (locked) Menu.setApplicationMenu(lockedMenu(Menu, { kiosk: flags.kiosk }, process.platform));
  const win = new BrowserWindow({
    width: 1280,
    height: 800,
    show: false,
    title: 'Tessera',
    backgroundColor: '#0f172a',
    kiosk: flags.kiosk,
    fullscreen: flags.kiosk,
    autoHideMenuBar: true,
    webPreferences: secureWebPreferences(paths.preloadPath, { devTools: !locked }),
  });
  hardenWebContents(win.webContents, APP_INDEX_URL);
  if (locked) {
    // The window's own menu bar too (Linux, Windows), whatever menu it was given when created.
    win.removeMenu();
    lockDownWebContents(win.webContents, { kiosk: flags.kiosk });
  }
  win.once('ready-to-show', () => win.show());
  void win.loadURL(APP_INDEX_URL);
  return win;
}
