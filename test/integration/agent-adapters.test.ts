/**
 * The adapter conformance suite (test/helpers/agent-adapter-conformance.ts; issue 17 point 2) on the two device-side
 * sets: the file-based set of the generic runtime (`createFileAdapters`, the README's example to copy) and the
 * device's default set on SQLite and the data folder (`createAgentStore`). The cloud's PostgreSQL set runs it in
 * agent-store-pg.test.ts.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createFileAdapters } from '../../main/runtime/agents/file-adapters.js';
import { createAgentStore } from '../../main/runtime/orchestrator/store.js';
import { openStore } from '../../main/runtime/store/index.js';
import { describeAdapterConformance } from '../helpers/agent-adapter-conformance.js';
import { tempDir } from '../helpers/tmp.js';

describeAdapterConformance('files (createFileAdapters)', async () => {
  const dir = tempDir('tessera-agent-files-', 'file');
  return { ...createFileAdapters(join(dir, 'sessions')), cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
});

describeAdapterConformance('device SQLite (createAgentStore)', async () => {
  const dir = tempDir('tessera-agent-sqlite-', 'file');
  const store = openStore({ path: join(dir, 'tessera.db') });
  const { persistence, storage } = createAgentStore({ store, dataDir: dir });
  return { persistence, storage, cleanup: async () => store.close() };
}, { refusesConflictingEntries: true });
