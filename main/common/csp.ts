/**
 * The renderer's Content-Security-Policy, one string for both shells (Electron session headers and the
 * headless HTTP server). No inline script or style, no eval, no remote origins; `connect-src 'self'` covers
 * the same-origin WebSocket in current Chromium.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "media-src 'self' blob:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');
