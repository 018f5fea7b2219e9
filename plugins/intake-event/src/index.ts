/**
 * intake-event: the intake of the API Receipt Gateway (seed 004 §9.1, §10). Turns an event view
 * `{intent: {kind, name}, ctx: {method, path, body_cid?}, meta}` into the intent `event.<kind>.<name>` and the
 * slots the policies read: `method` (upper case), `path`, `scopes` (`["<method lower>:<path>"]`, what
 * policy-authorization checks) and `body_cid`. Pure: the same view always gives the same output.
 */
import type { IntakeResult, PolicyContext } from '../../sdk/index.js';

interface EventView {
  intent?: { kind?: unknown; name?: unknown };
  ctx?: { method?: unknown; path?: unknown; body_cid?: unknown };
  meta?: Record<string, unknown>;
}

/** Lower-case letters, digits, "_" and "-" only: an intent segment. */
function segment(value: unknown, fallback: string): string {
  const text = typeof value === 'string' ? value.toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '') : '';
  return text === '' ? fallback : text.slice(0, 60);
}

export function normalize(input: EventView, _ctx: PolicyContext): IntakeResult {
  const kind = segment(input?.intent?.kind, 'unknown');
  const name = segment(input?.intent?.name, 'unnamed');
  const method = typeof input?.ctx?.method === 'string' ? input.ctx.method.toUpperCase() : '';
  const path = typeof input?.ctx?.path === 'string' ? input.ctx.path : '';
  const slots: Record<string, unknown> = {
    method,
    path,
    scopes: method !== '' && path !== '' ? [`${method.toLowerCase()}:${path}`] : [],
  };
  if (typeof input?.ctx?.body_cid === 'string') slots['body_cid'] = input.ctx.body_cid;
  return { intent: `event.${kind}.${name}`, slots, ctx: { tenant: typeof input?.meta?.['tenant'] === 'string' ? input.meta['tenant'] : null } };
}
