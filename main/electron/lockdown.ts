/**
 * A locked shell: the kiosk (`--kiosk`) and every packaged build. Electron's default application menu carries
 * Reload, Force Reload and Toggle Developer Tools with their accelerators (Ctrl+R, Ctrl+Shift+R, Ctrl+Shift+I,
 * F11 …), which let a passer-by open DevTools — a console in the UI's origin with the IPC bridge — or reload the
 * page out of a dialogue. A locked shell has no such menu, a window whose DevTools are off
 * (`webPreferences.devTools: false`, ./window.ts), and drops those key presses before the page or any menu sees
 * them. A kiosk also drops the keys that close, hide, minimize or un-full-screen the window. An unpackaged,
 * non-kiosk shell (a developer's) keeps Electron's defaults.
 */
import type { Input, Menu as MenuType, MenuItemConstructorOptions, WebContents } from 'electron';

export interface LockOptions {
  kiosk: boolean;
}

type KeyInput = Pick<Input, 'type' | 'key' | 'code' | 'control' | 'meta' | 'shift' | 'alt'>;

/** The letter or function key pressed, by physical key (`KeyR` → `r`) so that a Cyrillic layout cannot slip past. */
function keyOf(input: KeyInput): string {
  const code = input.code;
  if (/^Key[A-Z]$/.test(code)) return code.slice(3).toLowerCase();
  if (/^F[0-9]{1,2}$/.test(code)) return code.toLowerCase();
  return input.key.toLowerCase();
}

/**
 * What a key press would do that a locked shell refuses: `devtools`, `reload`, or (kiosk) `leave` — close, quit,
 * hide, minimize, leave full screen. Undefined for every other key, which reaches the page as usual.
 */
export function lockedShortcut(input: KeyInput, options: LockOptions): 'devtools' | 'reload' | 'leave' | undefined {
  if (input.type !== 'keyDown' && input.type !== 'rawKeyDown') return undefined;
  const key = keyOf(input);
  const mod = input.control || input.meta;
  if (key === 'f12' || (mod && input.shift && ['i', 'j', 'c'].includes(key)) || (input.meta && input.alt && ['i', 'j', 'c'].includes(key))) return 'devtools';
  if (key === 'f5' || (mod && key === 'r')) return 'reload';
  if (options.kiosk) {
    if (key === 'f11' || (input.alt && key === 'f4') || (mod && ['w', 'q'].includes(key)) || (input.meta && ['h', 'm'].includes(key)) || (input.control && input.meta && key === 'f')) return 'leave';
  }
  return undefined;
}

/** Drop the locked shortcuts on this WebContents before the page or a menu accelerator acts on them. */
export function lockDownWebContents(contents: Pick<WebContents, 'on'>, options: LockOptions): void {
  contents.on('before-input-event', (event, input) => {
    if (lockedShortcut(input, options) !== undefined) event.preventDefault();
  });
}

/**
 * The application menu of a locked shell: none (which on Linux and Windows also removes the window's menu bar);
 * on macOS outside the kiosk, only the app and Edit menus, so that Quit and the clipboard keys still work.
 */
export function lockedMenu(Menu: Pick<typeof MenuType, 'buildFromTemplate'>, options: LockOptions, platform: NodeJS.Platform): MenuType | null {
  if (options.kiosk || platform !== 'darwin') return null;
  const template: MenuItemConstructorOptions[] = [{ role: 'appMenu' }, { role: 'editMenu' }];
  return Menu.buildFromTemplate(template);
}
