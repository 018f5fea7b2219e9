/**
 * API answers name scenario and intent rule files relative to their folder, never by the device's absolute path
 * (issue 13 point 20): a real headless host with the shipped scenarios and rules, over HTTP on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { APP_ROOT } from '../../main/host/paths.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { tempDir } from '../helpers/tmp.js';

let host: RunningHost;
let dataDir: string;
beforeAll(async () => {
  dataDir = tempDir('tessera-paths-', 'file');
  host = await startHost({ dataDir, host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {}, pluginDirs: [] });
}, 60_000);
afterAll(async () => host?.close());

const api = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(host.origin + path, { method, headers: { authorization: `Bearer ${host.token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as Record<string, unknown> };
};

describe('file names in API answers', () => {
  it('GET /api/scenarios names each scenario file relative to its scenarios folder', async () => {
    const { status, text, body } = await api('GET', '/api/scenarios');
    expect(status).toBe(200);
    const scenarios = body['scenarios'] as Array<{ id: string; source: string | null }>;
    expect(scenarios.find((s) => s.id === 'weather_now')?.source).toBe('weather_now.yaml');
    for (const s of scenarios) expect(s.source, s.id).toMatch(/^[\w.-]+\.ya?ml$/);
    expect(text).not.toContain(APP_ROOT);
  });

  it('POST /api/intent/recognize names the rule that matched as file:line in its rules folder', async () => {
    const en = await api('POST', '/api/intent/recognize', { text: "What's the weather like in Berlin?" });
    expect(en.status).toBe(200);
    expect(en.body['rule']).toMatchObject({ source: expect.stringMatching(/^en\.yaml:\d+$/), file: 'en.yaml', line: expect.any(Number) });
    const ru = await api('POST', '/api/intent/recognize', { text: 'Поставь таймер на 5 минут' });
    expect(ru.body['rule']).toMatchObject({ source: expect.stringMatching(/^ru\.yaml:\d+$/), file: 'ru.yaml' });
    for (const answer of [en, ru]) {
      expect(answer.text).not.toContain(APP_ROOT);
      expect(answer.text).not.toContain(dataDir);
    }
  });
});
