/**
 * Tool steps run tool plugins through the plugin registry. The engine is the permit issuer for its own
 * steps (until the receipt pipeline issues them, issue 5): each call gets a device-signed permit bound to
 * exactly these arguments and scoped to the tool's effect capabilities, and carries the step's idempotency
 * key: the plugin sees it in `ctx.idempotency_key`, and every effect it makes is keyed from it (an HTTP request's
 * `Idempotency-Key` header, the same on every attempt and resume of the step: sandbox/capabilities.ts), so the
 * effect's receiver can apply it once. The step's cancel token goes with
 * the call: a cancelled run stops waiting for the plugin at once, and the plugin sees `host.cancelled()`.
 */
import { randomUUID } from 'node:crypto';
import { cidOf } from '../../common/cid.js';
import { TesseraError } from '../../common/errors.js';
import { EFFECT_CAPABILITIES } from '../../../sandbox/manifest.js';
import { issuePermit } from '../../../sandbox/permits.js';
import type { SigningKey } from '../keys/index.js';
import type { PluginRegistry } from '../plugins/index.js';
import type { ToolRunner } from './engine.js';

const PERMIT_TTL_MS = 5 * 60_000;

export function pluginToolRunner(plugins: PluginRegistry, deviceKey: SigningKey): ToolRunner {
  return {
    async run(tool, args, { idempotency_key, trace_id, now, signal }) {
      const plugin = plugins.find(tool);
      if (!plugin) throw new TesseraError('PLUGIN_NOT_FOUND', `No loaded tool plugin "${tool}".`);
      if (plugin.manifest.kind !== 'tool') throw new TesseraError('VALIDATION_FAILED', `${tool} is a ${plugin.manifest.kind} plugin, not a tool.`);
      const scope = plugin.grants.map((g) => g.name).filter((c) => EFFECT_CAPABILITIES.has(c));
      const permit = scope.length > 0 ? issuePermit(deviceKey, { input_cid: cidOf(args ?? null), scope, expires_at: new Date(now + PERMIT_TTL_MS).toISOString(), nonce: `${idempotency_key}:${randomUUID()}` }) : undefined;
      const result = await plugins.run(plugin.key, args, { now, trace_id, signal, idempotency_key, ...(permit ? { permit } : {}) });
      return result.output;
    },
  };
}
