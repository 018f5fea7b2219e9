/**
 * The Electron security checklist, applied in one place and unit-tested with a mocked `electron`
 * (test/unit/electron-shell.test.ts). https://www.electronjs.org/docs/latest/tutorial/security
 */
import type { BrowserWindowConstructorOptions, Session, WebContents } from 'electron';
import { CONTENT_SECURITY_POLICY } from '../common/csp.js';

/**
 * webPreferences every Tessera window gets: isolation on, sandbox on, no Node in the renderer. `devTools: false`
 * for a locked shell (kiosk or packaged build, ./lockdown.ts): DevTools cannot be opened by any means.
 */
export function secureWebPreferences(preloadPath: string, options: { devTools?: boolean } = {}): NonNullable<BrowserWindowConstructorOptions['webPreferences']> {
  return {
    preload: preloadPath,
    devTools: options.devTools ?? true,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    nodeIntegrationInSubFrames: false,
    webSecurity: true,
    allowRunningInsecureContent: false,
    experimentalFeatures: false,
    webviewTag: false,
    navigateOnDragDrop: false,
    spellcheck: false,
  };
}

/**
 * Is `url` the page of the Tessera UI, `rendererIndexUrl` (`app://tessera/index.html`, ./app-protocol.ts), with
 * any query or fragment? Scheme, host and path must be equal as written: another spelling is refused, never
 * normalized into a match.
 */
export function isAppUrl(url: string, rendererIndexUrl: string): boolean {
  try {
    const u = new URL(url);
    const app = new URL(rendererIndexUrl);
    return u.protocol === app.protocol && u.host === app.host && u.pathname === app.pathname;
  } catch {
    return false;
  }
}

/**
 * Session-wide rules: every permission request denied (the UI asks for none yet; the microphone is captured
 * in the main process, not the renderer), and the CSP header on every response.
 */
export function hardenSession(session: Session): void {
  session.setPermissionRequestHandler((_webContents, _permission, callback) => callback(false));
  session.setPermissionCheckHandler(() => false);
  session.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [CONTENT_SECURITY_POLICY] } });
  });
}

/** No navigation away from the app, no new windows, no webviews. */
export function hardenWebContents(contents: WebContents, rendererIndexUrl: string): void {
  contents.on('will-navigate', (event, url) => {
    if (!isAppUrl(url, rendererIndexUrl)) event.preventDefault();
  });
  contents.on('will-redirect', (event, url) => {
    if (!isAppUrl(url, rendererIndexUrl)) event.preventDefault();
  });
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
  contents.on('will-attach-webview', (event) => event.preventDefault());
}
