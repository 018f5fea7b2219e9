/**
 * Secrets over real HTTP on 127.0.0.1 and the built CLI (README "Configuration", agents' model; main/host/http/secrets.ts,
 * main/host/cli-secrets.ts): an operator sets, lists and deletes secrets; other roles are refused; a bad name is
 * VALIDATION_FAILED; the value shows up in no log line, journal event or response; the agents' model client uses a
 * key set this way (the protocol-faithful fake OpenAI server refuses any other); `tessera secret set` reads the value
 * from standard input.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reveal } from '../../main/common/expr.js';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { BIN, cleanEnv, requireBuild } from '../helpers/cli.js';
import { startFakeOpenAi } from '../helpers/fake-openai.js';
import type { FakeOpenAi } from '../helpers/fake-openai.js';
import { tempDir } from '../helpers/tmp.js';

const MODEL_KEY = 'sk-model-key-never-shown-5150';
const OTHER_VALUE = 'other-secret-value-7731';
const CLI_VALUE = 'cli-piped-value-9902';
const VALUES = [MODEL_KEY, OTHER_VALUE, CLI_VALUE];

let fake: FakeOpenAi;
let host: RunningHost;
const logger = createMemoryLogger();
let operator: string;
/** Every response body this file received, to check that no value was ever answered. */
const seen: string[] = [];
const savedEnv = { url: process.env['TESSERA_AGENT_MODEL_URL'], model: process.env['TESSERA_AGENT_MODEL'] };

beforeAll(async () => {
  fake = await startFakeOpenAi({ apiKey: MODEL_KEY });
  // The device's model (profile `model: default`) is read from the environment at each profile load.
  process.env['TESSERA_AGENT_MODEL_URL'] = fake.url;
  process.env['TESSERA_AGENT_MODEL'] = 'fake-model';
  const dataDir = tempDir('tessera-secrets-http-', 'file');
  mkdirSync(join(dataDir, 'agents', 'profiles'), { recursive: true });
  writeFileSync(
    join(dataDir, 'agents', 'profiles', 'keyed-test.yaml'),
    'type: keyed-test\ntitle: keyed-test\nsystem_prompt: Answer in one sentence.\nmodel: default\nmcp_servers: []\ndegraded: fallback\nfallback: support\nmeta: { roles: [operator], proposes: [] }\n',
  );
  host = await startHost({ dataDir, host: '127.0.0.1', port: 0, logger, shell: 'headless', env: {}, pluginDirs: [] });
  operator = host.token;
}, 60_000);
afterAll(async () => {
  await host?.close();
  await fake?.close();
  for (const [k, v] of [['TESSERA_AGENT_MODEL_URL', savedEnv.url], ['TESSERA_AGENT_MODEL', savedEnv.model]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

async function call(token: string, method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; text: string; json: Record<string, unknown> }> {
  const res = await fetch(host.origin + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  seen.push(text);
  return { status: res.status, text, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

/**
 * The built CLI against this file's host. Not spawnSync: the host runs in this process, so blocking its event loop
 * while the CLI waits for an answer would hang both.
 */
function tessera(args: string[], input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args, '--url', host.origin, '--token', operator], { env: cleanEnv(), timeout: 30_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => {
      seen.push(stdout, stderr);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

describe('secrets over HTTP', () => {
  it('lets an operator set, list and delete secrets, answering names only', async () => {
    expect(await call(operator, 'PUT', '/api/secrets/agents.model.api_key', { value: MODEL_KEY })).toMatchObject({ status: 204, text: '' });
    expect((await call(operator, 'PUT', '/api/secrets/weather.api_key', { value: 'first' })).status).toBe(204);
    expect((await call(operator, 'PUT', '/api/secrets/weather.api_key', { value: OTHER_VALUE })).status).toBe(204);
    expect(reveal(host.runtime.secrets.get('weather.api_key'))).toBe(OTHER_VALUE);
    expect((await call(operator, 'GET', '/api/secrets')).json).toEqual({ secrets: ['agents.model.api_key', 'weather.api_key'] });

    expect((await call(operator, 'DELETE', '/api/secrets/weather.api_key')).status).toBe(204);
    const again = await call(operator, 'DELETE', '/api/secrets/weather.api_key');
    expect(again.status).toBe(404);
    expect(again.json).toMatchObject({ error: { code: 'NOT_FOUND' } });
    expect((await call(operator, 'GET', '/api/secrets')).json).toEqual({ secrets: ['agents.model.api_key'] });
  });

  it('refuses travellers and staff on every secret route', async () => {
    for (const role of ['traveller', 'staff'] as const) {
      const token = host.credentials.roleToken(role);
      for (const [method, body] of [['GET', undefined], ['PUT', { value: 'x' }], ['DELETE', undefined]] as const) {
        const answer = await call(token, method, method === 'GET' ? '/api/secrets' : '/api/secrets/agents.model.api_key', body);
        expect(answer.status, `${role} ${method}`).toBe(403);
        expect(answer.json).toMatchObject({ error: { code: 'FORBIDDEN' } });
      }
    }
    expect(host.runtime.secrets.has('agents.model.api_key')).toBe(true);
  });

  it('refuses a bad name, an empty or oversized value and a malformed body without quoting the value', async () => {
    for (const [method, path, body] of [
      ['PUT', '/api/secrets/Weather%20Key', { value: OTHER_VALUE }],
      ['PUT', '/api/secrets/9lives', { value: OTHER_VALUE }],
      ['DELETE', '/api/secrets/UPPER', undefined],
      ['PUT', '/api/secrets/ok.name', { value: '' }],
      ['PUT', '/api/secrets/ok.name', { value: 'x'.repeat(8193) }],
      ['PUT', '/api/secrets/ok.name', { value: OTHER_VALUE, extra: 1 }],
      // V8's SyntaxError quotes the text around the fault: this route's parser must not pass it on.
      ['PUT', '/api/secrets/ok.name', `{"value": ${OTHER_VALUE}}`],
    ] as const) {
      const answer = await call(operator, method, path, body);
      expect(answer.status, `${method} ${path} ${JSON.stringify(body)?.slice(0, 40)}`).toBe(400);
      expect(answer.json).toMatchObject({ error: { code: 'VALIDATION_FAILED' } });
      expect(answer.text).not.toContain(OTHER_VALUE.slice(0, 8));
    }
    expect(host.runtime.secrets.list()).toEqual(['agents.model.api_key']);
  });

  it("gives the agents' model client the key set over HTTP: the fake endpoint accepts the turn", async () => {
    const session = await call(operator, 'POST', '/api/agents/sessions', { agent_type: 'keyed-test' });
    expect(session.status, session.text).toBe(201);
    fake.enqueue('Hello from the model.');
    const turn = await call(operator, 'POST', `/api/agents/sessions/${String(session.json['id'])}/messages`, { text: 'hello' });
    expect(turn.json).toMatchObject({ outcome: 'completed', source: 'model', text: 'Hello from the model.' });
    expect(fake.requests.at(-1)!.headers['authorization']).toBe(`Bearer ${MODEL_KEY}`);
  });
});

describe('tessera secret', () => {
  requireBuild();

  it('sets a secret from standard input (one trailing newline dropped), lists it and deletes it; refuses an empty value and a value given as an argument', async () => {
    const set = await tessera(['secret', 'set', 'cli.test_key'], `${CLI_VALUE}\n`);
    expect(set.code, set.stderr).toBe(0);
    expect(reveal(host.runtime.secrets.get('cli.test_key'))).toBe(CLI_VALUE);
    // Independent of each other: side by side (each CLI start costs about a second).
    const [list, empty, inArgv, bad] = await Promise.all([
      tessera(['secret', 'list']),
      tessera(['secret', 'set', 'cli.empty'], '\n'),
      tessera(['secret', 'set', 'cli.argv', 'argv-value-1234'], ''),
      tessera(['secret', 'set', 'Bad Name'], `${CLI_VALUE}\n`),
    ]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toBe('agents.model.api_key\ncli.test_key\n');
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('error CONFIG_INVALID: The value is empty');
    expect(inArgv.code).toBe(2);
    expect(inArgv.stderr).toContain('standard input');
    expect(inArgv.stderr).not.toContain('argv-value-1234');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('error VALIDATION_FAILED');
    expect(host.runtime.secrets.list()).toEqual(['agents.model.api_key', 'cli.test_key']);

    const deleted = await tessera(['secret', 'delete', 'cli.test_key']);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(host.runtime.secrets.has('cli.test_key')).toBe(false);
  });
});

describe('where the values never are', () => {
  it('journals each change by the operator with the name only, and no value is in a log line, the journal or any response', async () => {
    const events: Array<{ topic: string; payload: unknown }> = [];
    for (let after: number | null = 0; after !== null;) {
      const page = await call(operator, 'GET', `/api/events?limit=1000&after=${after}`);
      events.push(...(page.json['events'] as typeof events));
      after = page.json['next'] as number | null;
    }
    const changes = events.filter((e) => e.topic === 'secrets.changed').map((e) => e.payload);
    expect(changes).toEqual(expect.arrayContaining([
      { name: 'agents.model.api_key', action: 'set', by: 'operator' },
      { name: 'weather.api_key', action: 'delete', by: 'operator' },
      { name: 'cli.test_key', action: 'set', by: 'operator' },
    ]));
    const journal = JSON.stringify(events);
    const logs = JSON.stringify(logger.lines);
    expect(logger.lines.length).toBeGreaterThan(0);
    for (const value of VALUES) {
      expect(journal).not.toContain(value);
      expect(logs).not.toContain(value);
      expect(seen.filter((text) => text.includes(value))).toEqual([]);
    }
  });
});
