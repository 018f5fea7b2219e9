/**
 * The API token reaches a browser once, in the fragment of the URL the CLI prints (`/#token=…`; fragments are
 * never sent to a server). It is moved to session storage and removed from the address bar at once.
 */
const KEY = 'tessera.token';

export function takeTokenFromLocation(loc: Location = location, storage: Storage = sessionStorage, hist: History = history): string | null {
  const params = new URLSearchParams(loc.hash.replace(/^#/, ''));
  const fromUrl = params.get('token');
  if (fromUrl) {
    storage.setItem(KEY, fromUrl);
    hist.replaceState(null, '', loc.pathname + loc.search + '#/journey');
    return fromUrl;
  }
  return storage.getItem(KEY);
}

export function saveToken(token: string, storage: Storage = sessionStorage): void {
  storage.setItem(KEY, token);
}

export function forgetToken(storage: Storage = sessionStorage): void {
  storage.removeItem(KEY);
}
