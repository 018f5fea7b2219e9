/** The Tessera window and the flags the Electron shell accepts. */
import { BrowserWindow } from 'electron';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_HOST, parsePort, resolveDataDir } from '../host/config.js';
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
  rendererIndex: string;
  rendererIndexUrl: string;
  preloadPath: string;
}

export function createMainWindow(flags: Pick<ShellFlags, 'kiosk'>, paths: WindowPaths): BrowserWindow {
  const win = new BrowserWindow({
    width: 1280,
    height: 800,
    show: false,
    title: 'Tessera',
    backgroundColor: '#0f172a',
    kiosk: flags.kiosk,
    fullscreen: flags.kiosk,
    autoHideMenuBar: true,
    webPreferences: secureWebPreferences(paths.preloadPath),
  });
  hardenWebContents(win.webContents, paths.rendererIndexUrl);
  win.once('ready-to-show', () => win.show());
  void win.loadFile(paths.rendererIndex);
  return win;
}
