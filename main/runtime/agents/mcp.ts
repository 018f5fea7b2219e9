/**
 * A session's tools through MCP, with the official TypeScript SDK (seed 003 FR4; issue 17 point 5).
 *
 * One MCP `Client` per configured server per session (FR4.2: nothing is shared between sessions):
 * - `stdio` servers are child processes spawned with the SDK's minimal environment (`getDefaultEnvironment()`:
 *   PATH, HOME, USER…) plus the sandbox's `env` plus the server's own `env` — nothing else of the runtime's
 *   environment reaches them (FR4.3). Their cwd is the server's `cwd` (relative to the session's workdir) or the
 *   session's workdir.
 * - `in-process` servers are built by the app's factory, a fresh instance per session, and connected through the
 *   SDK's `InMemoryTransport` (FR4.5).
 *
 * Tools are offered to the model as `<server>__<tool>` ({@link mcpToolName}). A call never throws: every failure
 * (unknown tool, `isError` result, JSON-RPC error, bad arguments, timeout, a server that exited) comes back as
 * `{ok: false, error: {code: 'AGENT_TOOL_FAILED'}}` with a message the model can read (FR4.6). A stdio server that
 * exits is noticed at once (its transport closes), logged, and restarted on the next call to one of its tools — at
 * most `maxRestarts` times per session (NFR2.1). `close()` closes every client and makes sure no child outlives it.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import type { AgentRuntimeConfig, InProcessServerFactory, McpServerConfig, SandboxConfig, SessionInfo, SessionTools, ToolOutcome, ToolSpec, ToolsFactory } from './types.js';

/** The `_meta` key of a `tools/call` request that carries the call's idempotency key (ISSUE17-PLAN "Decisions"). */
export const IDEMPOTENCY_META_KEY = 'tessera/idempotency_key';

/** Default per-call deadline (McpServerConfig.call_timeout_ms). */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;

type Logger = NonNullable<AgentRuntimeConfig['logger']>;

export interface McpToolsOptions {
  /** The app's in-process servers, by the name profiles give in `factory`. */
  inProcessServers?: Record<string, InProcessServerFactory>;
  logger?: Logger;
  /** How the client introduces itself to servers. Default `{name: 'agent-runtime', version: '1.0.0'}`. */
  clientInfo?: { name: string; version: string };
  /** Deadline for a server to start and answer `initialize` + `tools/list`. Default 10 000 ms. */
  startTimeoutMs?: number;
  /** Restarts of one server per session after it exited (each on the next call to it). Default 1. */
  maxRestarts?: number;
  /**
   * At close, how long a stdio server gets to exit after its stdin is closed before it is sent SIGTERM (then
   * SIGKILL). Default 1 000 ms.
   */
  closeGraceMs?: number;
  /** Longest tool output handed to the model; longer is cut with a note. Default 100 000 characters. */
  maxContentChars?: number;
}

const NAME_MAX = 64;
const clean = (s: string) => s.replace(/[^a-zA-Z0-9_-]/g, '_');

/**
 * The name the model sees for `tool` of `server`: `<server>__<tool>`, with characters outside the OpenAI
 * function-name charset (`^[a-zA-Z0-9_-]{1,64}$`) replaced by `_`. A name longer than 64 characters, or one that
 * collides with another tool's in the same session, is cut to 55 characters and gets `_` + 8 hex digits of a
 * hash of the original pair (so profiles' `tools` lists should name such tools as `list()` shows them).
 */
export function mcpToolName(server: string, tool: string): string {
  const name = `${clean(server)}__${clean(tool)}`;
  return name.length > NAME_MAX ? hashedName(name, server, tool) : name;
}

function hashedName(name: string, server: string, tool: string): string {
  return `${name.slice(0, NAME_MAX - 9)}_${createHash('sha256').update(`${server}\0${tool}`).digest('hex').slice(0, 8)}`;
}

/** The MCP tools factory the agent runtime uses by default (AgentRuntimeConfig.tools). */
export function createMcpTools(options: McpToolsOptions = {}): ToolsFactory {
  const settings: Settings = {
    inProcessServers: options.inProcessServers ?? {},
    logger: options.logger,
    clientInfo: options.clientInfo ?? { name: 'agent-runtime', version: '1.0.0' },
    startTimeoutMs: options.startTimeoutMs ?? 10_000,
    maxRestarts: options.maxRestarts ?? 1,
    maxContentChars: options.maxContentChars ?? 100_000,
    closeGraceMs: options.closeGraceMs ?? 1_000,
  };
  /**
   * `servers` is the session's complete list (the runtime passes the profile's servers followed by the sandbox's);
   * servers start in parallel, and one that fails to start only makes its own tools unavailable.
   */
  return async (session, servers, sandbox) => {
    const connections: Connection[] = [];
    const seen = new Set<string>();
    for (const config of servers) {
      const connection = new Connection(config, session, sandbox, settings);
      if (seen.has(config.name)) connection.fail(`a second MCP server named "${config.name}" in this session (server names must be unique)`);
      seen.add(config.name);
      connections.push(connection);
    }
    await Promise.all(connections.filter((c) => c.state === 'idle').map((c) => c.start()));
    return new McpSessionTools(session, connections, settings);
  };
}

interface Settings {
  inProcessServers: Record<string, InProcessServerFactory>;
  logger: Logger | undefined;
  clientInfo: { name: string; version: string };
  startTimeoutMs: number;
  maxRestarts: number;
  maxContentChars: number;
  closeGraceMs: number;
}

/** A session's tools: the routing table from model names to (connection, MCP tool name). */
class McpSessionTools implements SessionTools {
  private closed = false;
  private routes = new Map<string, { connection: Connection; tool: string }>();
  private specs: ToolSpec[] = [];
  /** The tool lists the routes were built from (rebuilt when a restarted server lists different tools). */
  private builtFrom: Array<Tool[] | null> = [];

  constructor(
    private readonly session: SessionInfo,
    private readonly connections: Connection[],
    private readonly settings: Settings,
  ) {
    this.rebuild();
  }

  list(): ToolSpec[] {
    this.rebuild();
    return this.specs.map((s) => ({ ...s }));
  }

  async call(name: string, args: Record<string, unknown>, options: { idempotencyKey: string; signal?: AbortSignal }): Promise<ToolOutcome> {
    if (this.closed) return failure(`${name}: the session's tools are closed`);
    this.rebuild();
    const route = this.routes.get(name);
    if (!route) {
      // A tool of a server that is down for good (failed to start, or restarted too often) is "unavailable", naming
      // the server and why; anything else is unknown.
      const owner = this.connections.find((c) => name.startsWith(`${clean(c.config.name)}__`) && c.state === 'failed');
      if (owner) return failure(`${name}: MCP server "${owner.config.name}" is unavailable: ${owner.reason}`);
      const known = [...this.routes.keys()];
      return failure(`${name}: unknown tool (the session's tools are: ${known.slice(0, 30).join(', ') || 'none'}${known.length > 30 ? ', …' : ''})`);
    }
    if (args === null || typeof args !== 'object' || Array.isArray(args)) return failure(`${name}: the arguments must be a JSON object`);
    return route.connection.call(name, route.tool, args, options.idempotencyKey, options.signal);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.connections.map((c) => c.close()));
    this.settings.logger?.debug('agents.mcp.closed', { session: this.session.id });
  }

  private rebuild(): void {
    const current = this.connections.map((c) => (c.state === 'failed' ? null : c.tools));
    if (current.length === this.builtFrom.length && current.every((t, i) => t === this.builtFrom[i])) return;
    this.builtFrom = current;
    this.routes = new Map();
    this.specs = [];
    this.connections.forEach((connection, i) => {
      for (const tool of current[i] ?? []) {
        let name = mcpToolName(connection.config.name, tool.name);
        if (this.routes.has(name)) name = hashedName(name, connection.config.name, tool.name);
        this.routes.set(name, { connection, tool: tool.name });
        this.specs.push({ name, description: tool.description ?? tool.title ?? '', parameters: parametersOf(tool) });
      }
    });
  }
}

/**
 * One server of one session. States: `idle` → `starting` → `up`; `up` → `down` when the server exits (restarted
 * on the next call while restarts remain, else `failed`); `failed` when it cannot start; `closed` at the end.
 */
class Connection {
  state: 'idle' | 'starting' | 'up' | 'down' | 'failed' | 'closed' = 'idle';
  /** Why the server is down or failed (for the model and the log). */
  reason = '';
  /** The server's tools as it listed them at its last start. */
  tools: Tool[] = [];
  private client: Client | undefined;
  private inProcess: { close(): Promise<void> } | undefined;
  private pid: number | null = null;
  /** Resolves when the current client's transport has closed (the child has exited, for stdio). */
  private exited: Promise<void> = Promise.resolve();
  private starting: Promise<void> | undefined;
  private restarts = 0;
  private stderrTail = '';

  constructor(
    readonly config: McpServerConfig,
    private readonly session: SessionInfo,
    private readonly sandbox: SandboxConfig,
    private readonly settings: Settings,
  ) {}

  get timeoutMs(): number {
    return this.config.call_timeout_ms ?? DEFAULT_CALL_TIMEOUT_MS;
  }

  fail(reason: string): void {
    this.state = 'failed';
    this.reason = reason;
    this.settings.logger?.warn('agents.mcp.unavailable', { session: this.session.id, server: this.config.name, reason });
  }

  /** Starts (or restarts) the server; never throws — a failure leaves the connection `failed` with a reason. */
  start(): Promise<void> {
    this.starting ??= this.connect(false).finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  /** Restarts a server that exited (counted against `maxRestarts`); concurrent callers share the one restart. */
  private restart(): void {
    this.restarts += 1;
    this.state = 'starting';
    this.starting = (async () => {
      await this.shutdown();
      await this.connect(true);
    })().finally(() => {
      this.starting = undefined;
    });
  }

  private async connect(restart: boolean): Promise<void> {
    this.state = 'starting';
    this.stderrTail = '';
    const client = new Client(this.settings.clientInfo, { capabilities: {} });
    let closed!: () => void;
    this.exited = new Promise<void>((resolve) => (closed = resolve));
    client.onerror = (error) => this.settings.logger?.debug('agents.mcp.transport_error', { session: this.session.id, server: this.config.name, error: error.message });
    client.onclose = () => {
      closed();
      if (this.client !== client || this.state !== 'up') return;
      // The server went away on its own (crashed, exited): in-flight calls fail with ConnectionClosed right after
      // this; the next call restarts it (NFR2.1).
      this.state = 'down';
      this.reason = `the server exited${this.stderrTail ? ` (stderr: ${this.stderrTail.trim().slice(-500)})` : ''}`;
      this.settings.logger?.warn('agents.mcp.exited', { session: this.session.id, server: this.config.name, pid: this.pid, stderr: this.stderrTail.slice(-500) });
    };
    this.client = client;
    try {
      if (this.config.transport === 'stdio') {
        const cwd = this.config.cwd === undefined ? this.sandbox.workdir : resolvePath(this.sandbox.workdir, this.config.cwd);
        // spawn() reports a missing cwd as ENOENT of the command: say which one is missing.
        if (!existsSync(cwd)) throw new Error(`its working directory ${cwd} does not exist`);
        const transport = new StdioClientTransport({
          command: this.config.command,
          args: this.config.args ?? [],
          // FR4.3: the SDK's minimal environment, the sandbox's, the server's — nothing else of process.env.
          env: { ...getDefaultEnvironment(), ...this.sandbox.env, ...this.config.env },
          cwd,
          stderr: 'pipe',
        });
        transport.stderr?.on('data', (chunk: Buffer) => {
          this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-2000);
        });
        await client.connect(transport, { timeout: this.settings.startTimeoutMs });
        this.pid = transport.pid;
      } else {
        const factory = this.settings.inProcessServers[this.config.factory];
        if (!factory) throw new Error(`no in-process server factory named "${this.config.factory}"`);
        // FR4.2: a fresh server per session (and per restart): no state crosses sessions.
        const server = factory(this.session, this.config.options ?? {});
        const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
        await server.connect(serverSide);
        this.inProcess = server;
        await client.connect(clientSide, { timeout: this.settings.startTimeoutMs });
      }
      const tools: Tool[] = [];
      let cursor: string | undefined;
      do {
        const page = await client.listTools(cursor === undefined ? undefined : { cursor }, { timeout: this.settings.startTimeoutMs });
        tools.push(...page.tools);
        cursor = page.nextCursor;
      } while (cursor !== undefined);
      if (this.state !== 'starting') return; // closed while starting; close() cleans up
      this.tools = tools;
      this.state = 'up';
      this.settings.logger?.info(restart ? 'agents.mcp.restarted' : 'agents.mcp.started', { session: this.session.id, server: this.config.name, pid: this.pid, tools: tools.length });
    } catch (err) {
      const stderr = this.stderrTail.trim().slice(-500);
      await this.shutdown();
      if (this.state !== 'starting') return;
      this.fail(`${restart ? 'failed to restart' : 'failed to start'}: ${messageOf(err)}${stderr ? ` (stderr: ${stderr})` : ''}`);
    }
  }

  async call(name: string, tool: string, args: Record<string, unknown>, key: string, signal?: AbortSignal): Promise<ToolOutcome> {
    if (this.state === 'down') {
      if (this.restarts >= this.settings.maxRestarts) {
        this.fail(`${this.reason}; not restarted again (${this.settings.maxRestarts} restart(s) per session)`);
      } else {
        this.restart();
      }
    }
    if (this.state === 'starting') await this.starting;
    if (this.state !== 'up' || !this.client) {
      return failure(`${name}: MCP server "${this.config.name}" is unavailable: ${this.state === 'closed' ? "the session's tools are closed" : this.reason}`);
    }
    if (signal?.aborted) return failure(`${name}: cancelled before it started`);
    try {
      const result = await this.client.callTool(
        // The idempotency key travels in the request's `_meta` (MCP "General fields"): servers with effects key them on it.
        { name: tool, arguments: args, _meta: { [IDEMPOTENCY_META_KEY]: key } },
        undefined,
        { timeout: this.timeoutMs, ...(signal ? { signal } : {}) },
      );
      const content = render(result as CallToolResult, this.settings.maxContentChars);
      if (result.isError === true) return { ok: false, content, error: { code: 'AGENT_TOOL_FAILED', message: `${name} failed: ${content.slice(0, 1000)}` } };
      return { ok: true, content };
    } catch (err) {
      return failure(`${name}: ${this.describe(err, signal)}`);
    }
  }

  private describe(err: unknown, signal: AbortSignal | undefined): string {
    if (this.state === 'down') return `MCP server "${this.config.name}" exited during the call (${this.reason}); it will be restarted on the next call`;
    if (this.state === 'closed') return "the session's tools were closed during the call";
    if (signal?.aborted) return 'cancelled';
    if (err instanceof McpError && err.code === ErrorCode.RequestTimeout) return `timed out after ${this.timeoutMs} ms`;
    return messageOf(err);
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    await this.starting;
    await this.shutdown();
  }

  /**
   * Closes the client and, for stdio, makes sure the child is gone: the SDK ends its stdin (then SIGTERM and
   * SIGKILL after 2 s each); we send SIGTERM already after `closeGraceMs`, wait for the exit, and SIGKILL whatever is
   * still alive (no orphans, NFR2.1).
   */
  private async shutdown(): Promise<void> {
    const client = this.client;
    const exited = this.exited;
    const pid = this.pid;
    const server = this.inProcess;
    this.client = undefined;
    this.inProcess = undefined;
    this.pid = null;
    const term = pid === null ? undefined : setTimeout(() => signal(pid, 'SIGTERM'), this.settings.closeGraceMs);
    await client?.close().catch(() => undefined);
    clearTimeout(term);
    await server?.close().catch(() => undefined);
    if (client) await Promise.race([exited, delay(5_000)]);
    if (pid !== null && alive(pid)) {
      this.settings.logger?.warn('agents.mcp.kill', { session: this.session.id, server: this.config.name, pid });
      signal(pid, 'SIGKILL');
    }
  }
}

function failure(message: string): ToolOutcome {
  return { ok: false, content: `Error: ${message}`, error: { code: 'AGENT_TOOL_FAILED', message } };
}

/** The JSON Schema of a tool's arguments for the model: an object schema, without the `$schema` tag some endpoints reject. */
function parametersOf(tool: Tool): Record<string, unknown> {
  const schema: Record<string, unknown> = { ...(tool.inputSchema as Record<string, unknown>) };
  delete schema.$schema;
  schema.type = 'object';
  schema.properties ??= {};
  return schema;
}

/**
 * Tool output as text for the model: text items joined by newlines; other items (images, audio, resources) as JSON
 * with binary data replaced by its size; `structuredContent` as JSON when no text item carries it already.
 */
function render(result: CallToolResult | { toolResult: unknown }, max: number): string {
  if ('toolResult' in result) return cut(JSON.stringify(result.toolResult) ?? '', max);
  const parts: string[] = [];
  let hasText = false;
  for (const item of result.content ?? []) {
    if (item.type === 'text') {
      parts.push(item.text);
      hasText = true;
    } else if ('data' in item && typeof item.data === 'string') {
      parts.push(JSON.stringify({ ...item, data: `[${item.data.length} base64 characters]` }));
    } else {
      parts.push(JSON.stringify(item));
    }
  }
  if (result.structuredContent !== undefined && !hasText) parts.push(JSON.stringify(result.structuredContent));
  return cut(parts.join('\n'), max);
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}\n[… ${text.length - max} more characters cut]`;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
