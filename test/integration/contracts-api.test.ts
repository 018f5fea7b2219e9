/** Seed 002 contract routes over real HTTP on 127.0.0.1: execution status, artifact resolve and list (issue point 8). */
import Fastify from 'fastify';
import type { FastifyError, FastifyInstance } from 'fastify';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContractRoutes } from '../../main/host/http/contracts.js';
import { errorResponse } from '../../main/host/http/server.js';
import { errorSchema } from '../../main/host/schemas.js';
import { createBus } from '../../main/runtime/bus/index.js';
import { createArtifactRegistry, createExecutionRegistry } from '../../main/runtime/contracts/index.js';
import type { ArtifactRegistry, ExecutionRegistry } from '../../main/runtime/contracts/index.js';
import { createJournal } from '../../main/runtime/journal/index.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { openStore } from '../../main/runtime/store/index.js';
import type { Store } from '../../main/runtime/store/index.js';
import { tempDir } from '../helpers/tmp.js';

let store: Store;
let app: FastifyInstance;
let origin: string;
let executions: ExecutionRegistry;
let artifacts: ArtifactRegistry;
let ready = true;

beforeAll(async () => {
  store = openStore({ path: join(tempDir('tessera-contracts-api-', 'file'), 'tessera.db') });
  const journal = createJournal({ store });
  const bus = createBus({ journal, logger: createMemoryLogger() });
  artifacts = createArtifactRegistry({ store, bus });
  executions = createExecutionRegistry({ store, bus, artifacts });
  // The same Ajv options, error schema and error handler as main/host/http/server.ts.
  app = Fastify({ logger: false, ajv: { customOptions: { allErrors: false, coerceTypes: 'array', removeAdditional: false } } });
  app.addSchema(errorSchema);
  app.setErrorHandler((err: FastifyError, _request, reply) => {
    const { status, body } = errorResponse(err);
    void reply.code(status).send(body);
  });
  await app.register(createContractRoutes({ executions, artifacts, ready: () => ready }));
  origin = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await app?.close();
  store?.close();
});

const api = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(origin + path, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe('contract API', () => {
  it('reports an execution’s status with its lifecycle state, result and artifacts', async () => {
    const e = executions.create({ intent: { intent_type: 'ingest_file', tenant_id: 't1', session_id: 's1', solution_id: 'docs', parameters: { name: 'a.pdf' } }, metadata: { channel: 'api' } });
    const doc = artifacts.register({ kind: 'document', produced_by: { execution_id: e.execution_id, intent: 'ingest_file' } });
    executions.start(e.execution_id);
    executions.complete(e.execution_id, { result: { pages: 3 } });
    const { status, body } = await api('GET', `/api/execution/${e.execution_id}/status`);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      execution_id: e.execution_id,
      intent_type: 'ingest_file',
      intent: { parameters: { name: 'a.pdf' } },
      tenant_id: 't1',
      metadata: { channel: 'api' },
      state: 'completed',
      trace_id: e.trace_id,
      run_id: null,
      result: { pages: 3 },
      error: null,
      finished_at: expect.any(String),
      artifacts: [{ artifact_id: doc.artifact_id, kind: 'document', state: 'PENDING' }],
    });
  });

  it('resolves an artifact with its lineage and lists artifacts by producer, page by page', async () => {
    const src = artifacts.register({ kind: 'file', tenant_id: 't9', produced_by: { run_id: 'run-9' } });
    artifacts.markReady(src.artifact_id, { materializations: [{ uri: 'file:///x', media_type: 'text/plain', bytes: 3, cid: 'b3:' + '0'.repeat(64) }] });
    const derived = artifacts.register({ kind: 'summary', tenant_id: 't9', parent_artifacts: [src.artifact_id], produced_by: { run_id: 'run-9', step: 'summarize' }, metadata: { words: 12 } });
    const resolved = await api('POST', '/api/artifact/resolve', { id: derived.artifact_id });
    expect(resolved).toMatchObject({
      status: 200,
      body: { artifact: { artifact_id: derived.artifact_id, parent_artifacts: [src.artifact_id], metadata: { words: 12 }, state: 'PENDING' }, lineage: [{ artifact_id: src.artifact_id, depth: 1, state: 'READY', materializations: [{ media_type: 'text/plain', bytes: 3 }] }], missing: [], truncated: false },
    });
    const page1 = await api('POST', '/api/artifact/list', { produced_by: { run_id: 'run-9' }, limit: 1 });
    expect(page1).toMatchObject({ status: 200, body: { artifacts: [{ artifact_id: src.artifact_id }], next: src.artifact_id } });
    const page2 = await api('POST', '/api/artifact/list', { produced_by: { run_id: 'run-9' }, limit: 1, after: src.artifact_id });
    expect(page2).toMatchObject({ status: 200, body: { artifacts: [{ artifact_id: derived.artifact_id }], next: null } });
    expect(await api('POST', '/api/artifact/list', { tenant_id: 't9', state: 'READY' })).toMatchObject({ body: { artifacts: [{ artifact_id: src.artifact_id }] } });
    expect(((await api('POST', '/api/artifact/list', {})).body['artifacts'] as unknown[]).length).toBeGreaterThanOrEqual(3);
    expect(await api('POST', '/api/artifact/list')).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED', message: 'body must be object' } } });
  });

  it('answers unknown ids and bad bodies in the one error shape with stable codes', async () => {
    expect(await api('GET', '/api/execution/exe_ghost/status')).toEqual({ status: 404, body: { error: { code: 'EXECUTION_NOT_FOUND', message: 'No execution exe_ghost.', details: { reason: 'EXECUTION_NOT_FOUND', execution_id: 'exe_ghost' } } } });
    expect(await api('GET', '/api/execution/bad%20id/status')).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect(await api('POST', '/api/artifact/resolve', { id: 'art_ghost' })).toMatchObject({ status: 404, body: { error: { code: 'ARTIFACT_NOT_FOUND', details: { reason: 'ARTIFACT_NOT_FOUND' } } } });
    expect(await api('POST', '/api/artifact/resolve', {})).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED', message: expect.stringContaining('id') } } });
    expect(await api('POST', '/api/artifact/list', { state: 'GONE' })).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect(await api('POST', '/api/artifact/list', { produced_by: { who: 'me' } })).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED' } } });
    expect(await api('POST', '/api/artifact/list', { after: 'art_nowhere' })).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION_FAILED', message: expect.stringContaining('after') } } });
  });

  it('answers NOT_READY while the runtime is not ready', async () => {
    ready = false;
    try {
      expect(await api('POST', '/api/artifact/list', {})).toMatchObject({ status: 503, body: { error: { code: 'NOT_READY' } } });
    } finally {
      ready = true;
    }
  });
});
