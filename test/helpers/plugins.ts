import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair } from '../../main/runtime/keys/index.js';
import type { SigningKey } from '../../main/runtime/keys/index.js';
import { openTrustStore } from '../../main/runtime/trust/index.js';
import type { TrustStore } from '../../main/runtime/trust/index.js';
import { signPlugin } from '../../sandbox/package.js';
import { tempDir } from './tmp.js';

export interface PluginSpec {
  name?: string;
  version?: string;
  kind?: 'policy' | 'tool' | 'intake' | 'enrich';
  code: string;
  capabilities?: Array<{ name: string; origins?: string[] }>;
  limits?: { memory_mb?: number; timeout_ms?: number; deadline_ms?: number };
  extra?: Record<string, unknown>;
}

/** A publisher key, a trust folder that trusts it, and a way to write signed plugin folders. */
export function makePublisher(scope: 'test' | 'file' = 'file'): { key: SigningKey; trust: TrustStore; trustDir: string; root: string; write(spec: PluginSpec, sign?: boolean): string } {
  const key = generateKeyPair();
  const trustDir = tempDir('tessera-trust-', scope);
  const trust = openTrustStore(trustDir);
  trust.add(key.publicKeyPem, 'test-publisher');
  const root = tempDir('tessera-plugins-', scope);
  let n = 0;
  return {
    key,
    trust,
    trustDir,
    root,
    write(spec, sign = true) {
      const name = spec.name ?? `test-plugin-${++n}`;
      const dir = join(root, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'plugin.js'), spec.code);
      const manifest = {
        name,
        version: spec.version ?? '1.0.0',
        kind: spec.kind ?? 'policy',
        entry: 'plugin.js',
        entry_cid: 'b3:' + '0'.repeat(64),
        capabilities: spec.capabilities ?? [],
        ...(spec.limits ? { limits: spec.limits } : {}),
        ...spec.extra,
      };
      writeFileSync(join(dir, 'plugin.json'), JSON.stringify(manifest, null, 2));
      if (sign) signPlugin(dir, key);
      return dir;
    },
  };
}
