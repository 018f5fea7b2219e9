import type { RetryPolicy, Scenario, Step, StepTarget } from '../../main/runtime/scenarios/model.js';

const NO_RETRY: RetryPolicy = { max: 0, backoff: 'exponential', initial: 10, max_delay: 1000, jitter: 0 };
const EFFECTFUL = new Set(['io.say', 'io.ask', 'memory.set', 'bus.publish', 'scenario.run']);

type StepSpec = Partial<Omit<Step, 'target' | 'retries'>> & { name: string; retries?: Partial<RetryPolicy> } & ({ action: Extract<StepTarget, { kind: 'action' }>['action'] } | { tool: string } | { scenario: string });

/** A scenario built in code, with the DSL's defaults. */
export function scenario(id: string, steps: StepSpec[], extra: Partial<Scenario> = {}): Scenario {
  return {
    id,
    version: 1,
    priority: 'NORM',
    pool: 'io',
    locks: [],
    ...extra,
    steps: steps.map((s) => {
      const target: StepTarget = 'action' in s ? { kind: 'action', action: s.action } : 'tool' in s ? { kind: 'tool', tool: s.tool } : { kind: 'scenario', scenario: s.scenario };
      const { retries, ...rest } = s;
      delete (rest as Record<string, unknown>)['action'];
      delete (rest as Record<string, unknown>)['tool'];
      delete (rest as Record<string, unknown>)['scenario'];
      return {
        with: {},
        locks: [],
        effect: target.kind !== 'action' || EFFECTFUL.has(target.action),
        ...rest,
        target,
        retries: { ...NO_RETRY, ...retries },
      } as Step;
    }),
  };
}
