/**
 * Electron main process entry: the same runtime and HTTP host as headless, plus a hardened window whose UI
 * talks to the runtime over validated IPC. Started by `tessera start` when the Electron binary and a display
 * exist. Note: native modules (better-sqlite3, isolated-vm) must be rebuilt for Electron's ABI
 * (`npx @electron/rebuild`) on machines that run the window.
 */
import { app, ipcMain, protocol, session } from 'electron';
import type { BrowserWindow } from 'electron';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHost } from '../host/headless.js';
import type { RunningHost } from '../host/headless.js';
import { deviceInfo } from '../host/http/device.js';
import { createOperations } from '../host/operations.js';
import { createLogger } from '../runtime/log/index.js';
import { APP_INDEX_URL, handleAppScheme, registerAppScheme } from './app-protocol.js';
import { createWindowAccess, registerIpc } from './ipc.js';
import { utilityProcessLauncher } from './sandbox-launcher.js';
import { hardenSession, hardenWebContents } from './security.js';
import { createMainWindow, parseShellFlags } from './window.js';

const here = dirname(fileURLToPath(import.meta.url));
const rendererDir = resolve(here, '../renderer');
const paths = { preloadPath: resolve(here, '../preload/preload.cjs') };

// Privileged schemes can be registered only before the app is ready: at once, when this module loads.
registerAppScheme(protocol);

async function main(): Promise<void> {
  const logger = createLogger();
  const flags = parseShellFlags(process.argv.slice(1), process.env);
  // The app-wide rule for every WebContents, including any created later.
  app.on('web-contents-created', (_e, contents) => hardenWebContents(contents, APP_INDEX_URL));
  if (!app.requestSingleInstanceLock()) {
    logger.warn('another Tessera window is already open; exiting');
    app.quit();
    return;
  }
  await app.whenReady();
  hardenSession(session.defaultSession);
  handleAppScheme(protocol, rendererDir);

  let host: RunningHost;
  try {
    host = await startHost({ dataDir: flags.data, host: flags.host, port: flags.port, logger, shell: 'electron', sandboxLauncher: utilityProcessLauncher });
  } catch (err) {
    logger.error('the runtime could not start', { error: err });
    app.exit(1);
    return;
  }
  let win: BrowserWindow | undefined = createMainWindow({ kiosk: flags.kiosk, packaged: app.isPackaged }, paths);
  win.on('closed', () => (win = undefined));
  host.runtime.resources.add(
    registerIpc(ipcMain, {
      operations: createOperations(host.runtime),
      bus: host.runtime.bus,
      rendererIndexUrl: APP_INDEX_URL,
      target: () => win?.webContents,
      io: host.runtime.io,
      device: deviceInfo(host.runtime),
      // A kiosk window holds the traveller's role until the operator unlocks it with the PIN.
      access: createWindowAccess({ kiosk: flags.kiosk, credentials: host.credentials, deviceToken: host.token }),
      inject: async (request) => {
        const res = await host.server.inject(request);
        return { statusCode: res.statusCode, body: res.body };
      },
    }),
  );
  app.on('second-instance', () => win?.focus());

  let quitting = false;
  app.on('before-quit', (event) => {
    if (quitting) return;
    // Hold the quit until the runtime has closed its server and then its database.
    event.preventDefault();
    quitting = true;
    host.close().finally(() => app.exit(0));
  });
  app.on('window-all-closed', () => app.quit());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => app.quit());
}

void main();
