/**
 * A session's tools through MCP (seed 003 FR4, NFR2.1; issue 17 point 5), with real servers: the SDK-written stdio
 * server test/fixtures/mcp/echo-server.mjs as a child process, and in-process McpServer instances over the SDK's
 * in-memory transport.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createMcpTools } from '../../main/runtime/agents/mcp.js';
import type { McpServerConfig, SandboxConfig, SessionInfo, SessionTools } from '../../main/runtime/agents/types.js';
import { tempDir } from '../helpers/tmp.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/mcp/echo-server.mjs', import.meta.url));
const stdio = (name: string, extra: Partial<Extract<McpServerConfig, { transport: 'stdio' }>> = {}): McpServerConfig => ({
  name,
  transport: 'stdio',
  command: process.execPath,
  args: [FIXTURE],
  ...extra,
});
const session = (id: string): SessionInfo => {
  const at = new Date().toISOString();
  return { id, agent_type: 'test', state: 'idle', owner: 'test', metadata: {}, created_at: at, updated_at: at, last_active_at: at, usage: { tokens: 0, tool_calls: 0, wall_ms: 0, model_calls: 0 }, pause: null, degraded: false };
};
/** `scope: 'file'` for a session made in beforeAll (its workdir must outlive the first test). */
const sandbox = (env: Record<string, string> = {}, scope: 'test' | 'file' = 'test'): SandboxConfig => ({ env, mcp_servers: [], workdir: tempDir('tessera-mcp-', scope) });
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
let keys = 0;
const key = () => `test:${++keys}`;

/** A per-session in-process server with state: a counter only its own session can see. */
const counterFactory = (info: SessionInfo, options: Record<string, unknown>) => {
  const server = new McpServer({ name: 'counter', version: '1.0.0' });
  let count = Number(options.start ?? 0);
  server.registerTool('incr', { description: 'Adds one to the counter.', inputSchema: {} }, () => ({ content: [{ type: 'text', text: `${info.id}:${++count}` }] }));
  server.registerTool('echo', { description: 'Echoes.', inputSchema: { text: z.string() } }, ({ text }) => ({ content: [{ type: 'text', text }] }));
  return server;
};

const factory = createMcpTools({ inProcessServers: { counter: counterFactory } });

describe('one session with stdio and in-process servers', () => {
  let tools: SessionTools;
  let effectLog: string;

  beforeAll(async () => {
    // Set in the runtime's own environment: it must NOT reach a server (FR4.3).
    process.env.TESSERA_MCP_TEST_LEAK = 'leaked';
    effectLog = join(tempDir('tessera-mcp-effects-', 'file'), 'effects.jsonl');
    tools = await factory(
      session('s-main'),
      [
        stdio('echo', { env: { EFFECT_LOG: effectLog, SERVER_VAR: 'own' } }),
        { name: 'counter', transport: 'in-process', factory: 'counter', options: { start: 10 } },
        stdio('ghost', { command: '/nonexistent/mcp-server' }),
      ],
      sandbox({ SANDBOX_VAR: 'from-sandbox' }, 'file'),
    );
  });
  afterAll(async () => {
    delete process.env.TESSERA_MCP_TEST_LEAK;
    await tools?.close();
  });

  it('lists each tool as <server>__<tool> with its JSON Schema as parameters', () => {
    const specs = tools.list();
    const names = specs.map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining(['echo__echo', 'echo__add', 'echo__effect', 'echo__slow', 'counter__incr']));
    expect(names.every((n) => /^[a-zA-Z0-9_-]{1,64}$/.test(n))).toBe(true);
    expect(names.some((n) => n.startsWith('ghost__'))).toBe(false);
    expect(specs.find((s) => s.name === 'echo__add')).toEqual({
      name: 'echo__add',
      description: 'Adds two numbers.',
      parameters: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'] },
    });
  });

  it('calls stdio and in-process tools and returns their text', async () => {
    expect(await tools.call('echo__echo', { text: 'hello' }, { idempotencyKey: key() })).toEqual({ ok: true, content: 'hello' });
    expect(await tools.call('echo__add', { a: 2, b: 3 }, { idempotencyKey: key() })).toEqual({ ok: true, content: '5' });
    expect(await tools.call('counter__incr', {}, { idempotencyKey: key() })).toEqual({ ok: true, content: 's-main:11' });
  });

  it("gives a stdio server a minimal environment plus the sandbox's and its own, nothing else of the runtime's", async () => {
    const env = async (name: string) => (await tools.call('echo__env', { name }, { idempotencyKey: key() })).content;
    expect(await env('TESSERA_MCP_TEST_LEAK')).toBe('(unset)');
    expect(await env('SANDBOX_VAR')).toBe('from-sandbox');
    expect(await env('SERVER_VAR')).toBe('own');
    expect(await env('PATH')).toBe(process.env.PATH);
  });

  it("sends the idempotency key in the tools/call request's _meta", async () => {
    await tools.call('echo__effect', { value: 'a' }, { idempotencyKey: 's-main:call-1' });
    await tools.call('echo__effect', { value: 'b' }, { idempotencyKey: 's-main:call-2' });
    const lines = readFileSync(effectLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as unknown);
    expect(lines).toEqual([
      { key: 's-main:call-1', args: { value: 'a' } },
      { key: 's-main:call-2', args: { value: 'b' } },
    ]);
  });

  it('reports a failed tool, an unknown tool and bad arguments as ok:false AGENT_TOOL_FAILED', async () => {
    const failed = await tools.call('echo__fail', { message: 'no seats left' }, { idempotencyKey: key() });
    expect(failed).toEqual({ ok: false, content: 'no seats left', error: { code: 'AGENT_TOOL_FAILED', message: 'echo__fail failed: no seats left' } });

    const unknown = await tools.call('echo__nope', {}, { idempotencyKey: key() });
    expect(unknown.ok).toBe(false);
    expect(unknown.error?.code).toBe('AGENT_TOOL_FAILED');
    expect(unknown.error?.message).toMatch(/^echo__nope: unknown tool/);

    const bad = await tools.call('echo__add', { a: 'two' }, { idempotencyKey: key() });
    expect(bad.ok).toBe(false);
    expect(bad.error?.code).toBe('AGENT_TOOL_FAILED');
    expect(bad.content).toMatch(/Input validation error/);
  });

  it("reports a server that could not start as unavailable, naming it and why; the session's other servers work", async () => {
    const ghost = await tools.call('ghost__echo', { text: 'x' }, { idempotencyKey: key() });
    expect(ghost.ok).toBe(false);
    expect(ghost.error?.code).toBe('AGENT_TOOL_FAILED');
    expect(ghost.error?.message).toMatch(/^ghost__echo: MCP server "ghost" is unavailable: failed to start: .*ENOENT/);
  });

  // Last of this session: the afterAll close is then a no-op (close is idempotent).
  it('close() closes every client and leaves no child process behind, failing a call still in flight', async () => {
    const pid = Number((await tools.call('echo__pid', {}, { idempotencyKey: key() })).content);
    expect(alive(pid)).toBe(true);
    const pending = tools.call('echo__slow', { ms: 20_000 }, { idempotencyKey: key() });
    await tools.close();
    expect(alive(pid)).toBe(false);
    expect(await pending).toMatchObject({ ok: false, error: { code: 'AGENT_TOOL_FAILED' } });
    expect((await tools.call('counter__incr', {}, { idempotencyKey: key() })).error?.message).toMatch(/closed/);
  });
});

it('builds a fresh in-process server per session: state in one session is not visible in another (FR4.2)', async () => {
  const servers: McpServerConfig[] = [{ name: 'counter', transport: 'in-process', factory: 'counter' }];
  const a = await factory(session('s-a'), servers, sandbox());
  const b = await factory(session('s-b'), servers, sandbox());
  try {
    await a.call('counter__incr', {}, { idempotencyKey: key() });
    expect((await a.call('counter__incr', {}, { idempotencyKey: key() })).content).toBe('s-a:2');
    expect((await b.call('counter__incr', {}, { idempotencyKey: key() })).content).toBe('s-b:1');
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

it('names tools in the OpenAI function-name charset, cutting long names with a hash, and calls them by that name', async () => {
  const long = 'a'.repeat(70);
  const tools = await createMcpTools({
    inProcessServers: {
      odd: () => {
        const server = new McpServer({ name: 'odd', version: '1.0.0' });
        server.registerTool('look up.place', { inputSchema: {} }, () => ({ content: [{ type: 'text', text: 'found' }] }));
        server.registerTool(long, { inputSchema: {} }, () => ({ content: [{ type: 'text', text: 'long' }] }));
        return server;
      },
    },
  })(session('s-names'), [{ name: 'my.server', transport: 'in-process', factory: 'odd' }], sandbox());
  try {
    const names = tools.list().map((t) => t.name);
    expect(names[0]).toBe('my_server__look_up_place');
    expect(names[1]).toMatch(/^my_server__a{44}_[0-9a-f]{8}$/);
    expect(await tools.call(names[0]!, {}, { idempotencyKey: key() })).toEqual({ ok: true, content: 'found' });
    expect(await tools.call(names[1]!, {}, { idempotencyKey: key() })).toEqual({ ok: true, content: 'long' });
  } finally {
    await tools.close();
  }
});

it('gives up on a server that never answers initialize within startTimeoutMs, and kills it', async () => {
  const dir = sandbox();
  const pidFile = join(dir.workdir, 'pid');
  const hang = `require('node:fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setInterval(() => {}, 1000);`;
  const started = Date.now();
  const tools = await createMcpTools({ startTimeoutMs: 1_000, closeGraceMs: 100 })(session('s-hang'), [stdio('mute', { args: ['-e', hang] })], dir);
  expect(Date.now() - started).toBeLessThan(5_000);
  expect(alive(Number(readFileSync(pidFile, 'utf8')))).toBe(false);
  const outcome = await tools.call('mute__anything', {}, { idempotencyKey: key() });
  expect(outcome.error?.message).toMatch(/^mute__anything: MCP server "mute" is unavailable: failed to start: .*timed out/);
  await tools.close();
});

describe('a server with a short call timeout that crashes', () => {
  let tools: SessionTools;
  beforeAll(async () => {
    tools = await factory(session('s-crash'), [stdio('echo', { call_timeout_ms: 1_000 })], sandbox({}, 'file'));
  });
  afterAll(() => tools?.close());

  it('fails a call that outlives call_timeout_ms, or that its caller aborts; the server keeps working', async () => {
    const started = Date.now();
    const slow = await tools.call('echo__slow', { ms: 20_000 }, { idempotencyKey: key() });
    expect(slow).toMatchObject({ ok: false, error: { code: 'AGENT_TOOL_FAILED', message: 'echo__slow: timed out after 1000 ms' } });
    expect(Date.now() - started).toBeLessThan(5_000);

    const controller = new AbortController();
    const pending = tools.call('echo__slow', { ms: 20_000 }, { idempotencyKey: key(), signal: controller.signal });
    controller.abort();
    expect(await pending).toMatchObject({ ok: false, error: { message: 'echo__slow: cancelled' } });

    expect(await tools.call('echo__echo', { text: 'still here' }, { idempotencyKey: key() })).toEqual({ ok: true, content: 'still here' });
  });

  it('reports a server that crashes mid-call, restarts it on the next call, and gives up after maxRestarts (NFR2.1)', async () => {
    const first = Number((await tools.call('echo__pid', {}, { idempotencyKey: key() })).content);
    const crashed = await tools.call('echo__crash', {}, { idempotencyKey: key() });
    expect(crashed.ok).toBe(false);
    expect(crashed.error?.message).toMatch(/^echo__crash: MCP server "echo" exited during the call .*; it will be restarted on the next call$/);
    expect(alive(first)).toBe(false);
    expect(tools.list().map((t) => t.name)).toContain('echo__echo');

    const second = Number((await tools.call('echo__pid', {}, { idempotencyKey: key() })).content);
    expect(second).toBeGreaterThan(0);
    expect(second).not.toBe(first);
    expect(await tools.call('echo__echo', { text: 'back' }, { idempotencyKey: key() })).toEqual({ ok: true, content: 'back' });

    // The one restart (default maxRestarts: 1) is used: a second crash leaves the server's tools unavailable.
    await tools.call('echo__crash', {}, { idempotencyKey: key() });
    const after = await tools.call('echo__echo', { text: 'x' }, { idempotencyKey: key() });
    expect(after.error?.message).toMatch(/^echo__echo: MCP server "echo" is unavailable: the server exited.*not restarted again/);
    expect(tools.list()).toEqual([]);
  });
});
