/**
 * The scenario model (seed 001): what a scenario file says once it has been loaded, validated and its
 * `include:`s resolved. The YAML loader (./dsl.ts) produces it; the engine (./engine.ts) runs it.
 * Durations are milliseconds here; in YAML they are strings like `250ms`, `5s`, `2m`, `1h`, or numbers (ms).
 * Strings may hold `${…}` expressions (main/common/expr.ts), evaluated when the step runs.
 */

export type Priority = 'LOW' | 'NORM' | 'HIGH';

export interface RetryPolicy {
  /** Attempts after the first; 0 = no retry. */
  max: number;
  backoff: 'fixed' | 'exponential';
  /** First delay. */
  initial: number;
  /** Ceiling for any delay. */
  max_delay: number;
  /** 0..1: each delay is multiplied by a factor in [1 - jitter, 1 + jitter] (drawn by the engine, recorded). */
  jitter: number;
}

/** A built-in action (seed 001 §3, §5, §8) or a tool plugin call or a sub-scenario. Exactly one of the three. */
export type StepTarget =
  | { kind: 'action'; action: 'io.say' | 'io.ask' | 'memory.set' | 'bus.publish' | 'scenario.run' | 'wait' | 'log' }
  | { kind: 'tool'; tool: string }
  | { kind: 'scenario'; scenario: string };

export interface Step {
  /** Unique within the scenario; part of the idempotency key `scenario_id/run_id/step_name[#iteration]`. */
  name: string;
  target: StepTarget;
  /** Arguments; values may contain `${…}` expressions. */
  with: Record<string, unknown>;
  /** Run only when this expression is truthy. */
  when?: string;
  /** Run the step once per element of the list this expression yields, with the element bound to `as`. */
  foreach?: string;
  as?: string;
  retries: RetryPolicy;
  timeout?: number;
  /**
   * Effectful steps change the world (tool calls, io.say, bus.publish, scenario.run…). They get an idempotency
   * key, are retried with the same key when their outcome is unknown after a crash, and may `compensate`.
   */
  effect: boolean;
  /** The step to run, in reverse order, if a later step fails for good (saga). */
  compensate?: Omit<Step, 'compensate' | 'foreach' | 'as' | 'name'> & { name?: string };
  /** Resources this step holds while it runs (seed 001 §9: mic, tts, …). */
  locks: string[];
  /** Save the step's output into `bag.<output>`. */
  output?: string;
  /** Where it was defined, for error messages: `file:line`. */
  source?: string;
}

export interface Scenario {
  id: string;
  version: number;
  description?: string;
  priority: Priority;
  /** Whole-run timeout. */
  timeout?: number;
  /** At most this many runs of this scenario at once. */
  max_concurrent?: number;
  /** Concurrency pool (seed 001 §9): `cpu` or `io`. */
  pool: 'cpu' | 'io';
  /** Locks held for the whole run. */
  locks: string[];
  /** Declared inputs: JSON schema of `ctx`. */
  ctx_schema?: Record<string, unknown>;
  steps: Step[];
  /**
   * Node attributes a node must have to run this scenario when runs are spread over nodes (seed 001 §15, issue 18):
   * `has:mic`, `has:tts`, `region:eu`, or any label the operator sets. Empty or absent: any node.
   */
  constraints?: string[];
  /** Deliveries of a distributed run before it is failed for good (JetStream `max_deliver`); default 5. */
  max_deliver?: number;
  /**
   * What its steps may use (seed 001 §17): `tts`, `stt`, `secrets:<name>`, `tool:<plugin>`, `bus.publish:<topic
   * pattern>`, `scenario:<id>`. Absent: it declared nothing (accepted only in developer mode, see ./signing.ts). A
   * run started by another run may use only what its scenario and every ancestor's declare (./permissions.ts).
   */
  permissions?: string[];
  /** Memory keys (exact, or a prefix ending in `*`) that hold personal data (seed 001 §17): never logged in clear. */
  pii?: string[];
  /** The file it was loaded from. */
  source?: string;
}
