/**
 * `tessera journey …`: journeys of a running Tessera (seed 000 §4.4–4.5, §6.2; issue 15 point 2), over its HTTP API
 * (cli-api.ts). What staff and operators use to start, follow and fix a traveller's journey from a terminal.
 *
 * - `journey start SESSION [--journey REF] [--language L]`, `journey list [--session S] [--user U] [--state S]`,
 *   `journey show ID`, `journey next ID`, `journey route ID PLACE`, `journey done ID NODE`, `journey skip ID NODE`,
 *   `journey abandon ID [--reason R]`, `journey proposals ID`, `journey accept|reject ID PROPOSAL`; `--json` prints
 *   the answer as JSON.
 */
import { TesseraError } from '../common/errors.js';
import { JOURNEY_LANGUAGES, JOURNEY_STATES } from '../common/journeys.js';
import type { JourneyView, NextStep, Proposal, RoutePlan } from '../common/journeys.js';
import { apiClient, connection, connectionFlags } from './cli-api.js';
import { reporting } from './cli-report.js';
import type { CliIo, Command } from './cli.js';

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const MARK: Record<string, string> = { pending: ' ', entered: '>', completed: 'x', skipped: '-' };

/** One journey in a few lines a person reads: the itinerary with each node's state, the current one marked. */
function describe(j: JourneyView, io: CliIo): void {
  io.stdout(`${j.journey_instance_id}  ${j.state}  ${j.doc.title} (${j.doc.ref})  session ${j.product_runtime_session_id}  v${j.version}\n`);
  for (const n of j.nodes) {
    const hours = n.opens_at && n.closes_at ? `  ${n.opens_at}–${n.closes_at}` : '';
    io.stdout(`  [${MARK[n.state] ?? '?'}] ${n.id.padEnd(12)} ${n.kind.padEnd(10)} ${n.title} @ ${n.place.name}${hours}${n.by ? `  (${n.by})` : ''}\n`);
  }
  if (j.routing.mode === 'static') io.stdout(`  routing: static routes (${j.routing.degraded?.reason}: ${j.routing.degraded?.message})\n`);
}

const language = (values: Record<string, string | boolean | undefined>): string => {
  const l = str(values['language']);
  if (l !== undefined && !(JOURNEY_LANGUAGES as readonly string[]).includes(l)) throw new TesseraError('CONFIG_INVALID', `--language must be one of ${JOURNEY_LANGUAGES.join(', ')}, got ${JSON.stringify(l)}.`);
  return l === undefined ? '' : `language=${l}`;
};

function exact(positionals: string[], n: number, usage: string): string[] {
  if (positionals.length !== n) throw new TesseraError('CONFIG_INVALID', `Usage: ${usage}`);
  return positionals;
}

const json = { json: { type: 'boolean' } } as const;
const jsonFlag: [string, string] = ['--json', 'Print the answer as JSON.'];
const languageFlag: [string, string] = ['--language L', `Language of names and sentences (${JOURNEY_LANGUAGES.join(', ')}).`];
const enc = encodeURIComponent;

function print(values: Record<string, string | boolean | undefined>, io: CliIo, answer: unknown, human: () => void): number {
  if (values['json']) io.stdout(`${JSON.stringify(answer, null, 2)}\n`);
  else human();
  return 0;
}

const startCommand: Command = {
  name: 'journey start',
  summary: 'Start a journey for an active product session (the journey its product names, or --journey).',
  usage: 'tessera journey start SESSION [--journey REF] [--language L] [--json] [--url URL] [--token T]',
  options: { ...connection, ...json, journey: { type: 'string' }, language: { type: 'string' } },
  flags: [['--journey REF', 'A journey document id, id@range or cid (default: the product\'s).'], languageFlag, jsonFlag, ...connectionFlags],
  positionals: 1,
  run(values, positionals, io) {
    return reporting(io, async () => {
      const [session] = exact(positionals, 1, this.usage);
      const l = str(values['language']);
      language(values);
      const j = (await apiClient(values, io)('POST', '/api/journeys', { session, ...(str(values['journey']) ? { journey: str(values['journey']) } : {}), ...(l ? { language: l } : {}) })) as unknown as JourneyView;
      return print(values, io, j, () => describe(j, io));
    });
  },
};

const listCommand: Command = {
  name: 'journey list',
  summary: 'List journeys, newest first.',
  usage: `tessera journey list [--session S] [--user U] [--state ${JOURNEY_STATES.join('|')}] [--json] [--url URL] [--token T]`,
  options: { ...connection, ...json, session: { type: 'string' }, user: { type: 'string' }, state: { type: 'string' } },
  flags: [['--session S', 'Only this product session\'s journeys.'], ['--user U', 'Only this traveller\'s.'], ['--state S', 'Only journeys in this state.'], jsonFlag, ...connectionFlags],
  positionals: 0,
  run(values, _positionals, io) {
    return reporting(io, async () => {
      const state = str(values['state']);
      if (state !== undefined && !(JOURNEY_STATES as readonly string[]).includes(state)) throw new TesseraError('CONFIG_INVALID', `--state must be one of ${JOURNEY_STATES.join(', ')}, got ${JSON.stringify(state)}.`);
      const query = new URLSearchParams();
      for (const k of ['session', 'user', 'state']) if (str(values[k])) query.set(k, str(values[k])!);
      const { journeys } = (await apiClient(values, io)('GET', `/api/journeys${query.size > 0 ? `?${query}` : ''}`)) as unknown as { journeys: JourneyView[] };
      return print(values, io, journeys, () => {
        if (journeys.length === 0) io.stdout('no journeys\n');
        for (const j of journeys) io.stdout(`${j.journey_instance_id}  ${j.state.padEnd(9)}  ${j.doc.ref}  at ${j.current ?? '-'}  session ${j.product_runtime_session_id}\n`);
      });
    });
  },
};

/**
 * `journey show|next|proposals ID [--language L]`: one GET of the journey (`suffix`: its sub-resource) in the asked
 * language; `--json` prints what `answer` takes from the body, otherwise `human` prints it for a person.
 */
function readCommand<T>(verb: string, suffix: string, summary: string, answer: (body: unknown) => T, human: (value: T, io: CliIo) => void): Command {
  return {
    name: `journey ${verb}`,
    summary,
    usage: `tessera journey ${verb} ID [--language L] [--json] [--url URL] [--token T]`,
    options: { ...connection, ...json, language: { type: 'string' } },
    flags: [languageFlag, jsonFlag, ...connectionFlags],
    positionals: 1,
    run(values, positionals, io) {
      return reporting(io, async () => {
        const [id] = exact(positionals, 1, this.usage);
        const q = language(values);
        const value = answer(await apiClient(values, io)('GET', `/api/journeys/${enc(id!)}${suffix}${q ? `?${q}` : ''}`));
        return print(values, io, value, () => human(value, io));
      });
    },
  };
}

const showCommand = readCommand('show', '', 'Show a journey: its itinerary with each node\'s state, the current node and the routing health.', (b) => b as JourneyView, describe);

const nextCommand = readCommand('next', '/next', 'The next step of a journey, as the guide says it: where to go, how long, whether the pass covers it, when it opens.', (b) => b as NextStep, (step, io) => io.stdout(`${step.text}\n`));

const proposalsCommand = readCommand('proposals', '/proposals', 'The Journey Guide agent\'s proposals for a journey, with their state.', (b) => (b as { proposals: Proposal[] }).proposals, (proposals, io) => {
  if (proposals.length === 0) io.stdout('no proposals\n');
  for (const p of proposals) io.stdout(`${p.id}  ${p.state.padEnd(8)}  ${p.text}\n`);
});

const routeCommand: Command = {
  name: 'journey route',
  summary: 'A route from where the traveller is to a place of the journey (by its id).',
  usage: 'tessera journey route ID PLACE [--language L] [--json] [--url URL] [--token T]',
  options: { ...connection, ...json, language: { type: 'string' } },
  flags: [languageFlag, jsonFlag, ...connectionFlags],
  positionals: 2,
  run(values, positionals, io) {
    return reporting(io, async () => {
      const [id, place] = exact(positionals, 2, this.usage);
      const q = language(values);
      const route = (await apiClient(values, io)('GET', `/api/journeys/${enc(id!)}/route?to=${enc(place!)}${q ? `&${q}` : ''}`)) as unknown as RoutePlan;
      return print(values, io, route, () => io.stdout(`${route.text}\n  ${route.minutes} min, ${route.meters} m (${route.source})\n`));
    });
  },
};

function nodeCommand(action: 'done' | 'skip'): Command {
  return {
    name: `journey ${action}`,
    summary: action === 'done' ? 'Mark a node of a journey done (as a traveller saying "I\'m done here").' : 'Skip a node of a journey.',
    usage: `tessera journey ${action} ID NODE [--json] [--url URL] [--token T]`,
    options: { ...connection, ...json },
    flags: [jsonFlag, ...connectionFlags],
    positionals: 2,
    run(values, positionals, io) {
      return reporting(io, async () => {
        const [id, node] = exact(positionals, 2, this.usage);
        const j = (await apiClient(values, io)('POST', `/api/journeys/${enc(id!)}/nodes/${enc(node!)}/${action === 'done' ? 'complete' : 'skip'}`, {})) as unknown as JourneyView;
        return print(values, io, j, () => describe(j, io));
      });
    },
  };
}

const abandonCommand: Command = {
  name: 'journey abandon',
  summary: 'End a journey before its last node.',
  usage: 'tessera journey abandon ID [--reason R] [--json] [--url URL] [--token T]',
  options: { ...connection, ...json, reason: { type: 'string' } },
  flags: [['--reason R', 'Why (recorded in journey.abandoned).'], jsonFlag, ...connectionFlags],
  positionals: 1,
  run(values, positionals, io) {
    return reporting(io, async () => {
      const [id] = exact(positionals, 1, this.usage);
      const reason = str(values['reason']);
      const j = (await apiClient(values, io)('POST', `/api/journeys/${enc(id!)}/abandon`, reason ? { reason } : {})) as unknown as JourneyView;
      return print(values, io, j, () => describe(j, io));
    });
  },
};

function decideCommand(decision: 'accept' | 'reject'): Command {
  return {
    name: `journey ${decision}`,
    summary: decision === 'accept' ? 'Accept a proposal: the journey changes as it says.' : 'Reject a proposal; it is not shown again.',
    usage: `tessera journey ${decision} ID PROPOSAL [--json] [--url URL] [--token T]`,
    options: { ...connection, ...json },
    flags: [jsonFlag, ...connectionFlags],
    positionals: 2,
    run(values, positionals, io) {
      return reporting(io, async () => {
        const [id, proposal] = exact(positionals, 2, this.usage);
        const answer = (await apiClient(values, io)('POST', `/api/journeys/${enc(id!)}/proposals/${enc(proposal!)}/${decision}`, {})) as unknown as { journey: JourneyView; proposal: Proposal };
        return print(values, io, answer, () => {
          io.stdout(`${answer.proposal.state}: ${answer.proposal.text}\n`);
          describe(answer.journey, io);
        });
      });
    },
  };
}

export const JOURNEY_COMMANDS: Command[] = [
  startCommand,
  listCommand,
  showCommand,
  nextCommand,
  routeCommand,
  nodeCommand('done'),
  nodeCommand('skip'),
  abandonCommand,
  proposalsCommand,
  decideCommand('accept'),
  decideCommand('reject'),
];
