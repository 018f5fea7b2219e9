/**
 * Signed scenarios (seed 001 §17 "scenario.yaml + manifest.sig", issue 18 point 2).
 *
 * A scenario file `NAME.yaml` ships with `NAME.sig` beside it: a DSSE envelope (payload type
 * {@link SCENARIO_PAYLOAD_TYPE}) whose payload is the scenario's **canonical form** — the RFC 8785 bytes of the
 * loaded model (./dsl.ts) with its `include:`s inlined and its `source` fields (file paths and lines) dropped. So
 * the signature covers what runs, not how the YAML is laid out: a changed fragment changes the payload, a moved
 * folder or a reformatted comment does not. The scenario's cid is the cid of those bytes.
 *
 * Loading ({@link admitScenario}): in `enforce` mode (the default) a scenario is registered only when its `.sig`
 * verifies under a trusted, unrevoked key (main/runtime/trust), signs exactly the canonical form of the file as it
 * is now, and declares only permissions its publisher is granted (./permissions.ts grants.json). Otherwise it is
 * refused with SCENARIO_UNSIGNED, SCENARIO_SIGNATURE_INVALID, KEY_UNKNOWN, KEY_REVOKED or
 * SCENARIO_PERMISSION_NOT_GRANTED. A key of the built-in trust folder (resources/trust: the development key, whose
 * private half is public in plugins/dev-key) vouches only for files under the built-in scenarios folder
 * (`builtin`): anywhere else (`<data>/scenarios`) it is refused with SCENARIO_KEY_NOT_ALLOWED, unless the operator
 * trusts the same key in their own trust folder (review 18 item 13a). In `developer` mode a file that fails any of these is loaded anyway, with a
 * warning saying why — except one signed by a revoked key (KEY_REVOKED): that key is known bad, and developer mode
 * is for a file still being written, not for one someone withdrew. A signed scenario with no `permissions` list is
 * given `[]` (it is held to what it declared).
 */
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { canonicalBytes } from '../../common/canonical.js';
import { cidOfBytes } from '../../common/cid.js';
import { parseEnvelope } from '../../common/dsse.js';
import type { DsseEnvelope } from '../../common/dsse.js';
import { TesseraError, isTesseraError } from '../../common/errors.js';
import { signEnvelope } from '../keys/index.js';
import type { SigningKey } from '../keys/index.js';
import { verifyTrusted } from '../trust/index.js';
import type { TrustView } from '../trust/index.js';
import type { Scenario, Step } from './model.js';
import { ungranted } from './permissions.js';

export const SCENARIO_PAYLOAD_TYPE = 'application/vnd.tessera.scenario+json';
const MAX_SIG_FILE_BYTES = 64 * 1024;

export type ScenarioTrustMode = 'enforce' | 'developer';

/** `dir/NAME.yaml` → `dir/NAME.sig`. */
export function signatureFileOf(file: string): string {
  return join(dirname(file), `${basename(file).replace(/\.ya?ml$/i, '')}.sig`);
}

function withoutSource<T extends { source?: string }>(value: T): Omit<T, 'source'> {
  const { source: _source, ...rest } = value;
  return rest;
}

/** The signed form: the model without `source` at the scenario, step and compensation level (never inside `with`). */
export function canonicalScenario(scenario: Scenario): Uint8Array {
  const steps = scenario.steps.map((s: Step) => {
    const step = withoutSource(s);
    return s.compensate ? { ...step, compensate: withoutSource(s.compensate) } : step;
  });
  return canonicalBytes({ ...withoutSource(scenario), steps });
}

/** The scenario's content id: cid of its canonical form. */
export function scenarioCid(scenario: Scenario): string {
  return cidOfBytes(canonicalScenario(scenario));
}

/** A DSSE envelope over the canonical form of `scenario` (Ed25519 is deterministic: same scenario, same bytes). */
export function signScenario(scenario: Scenario, key: SigningKey): DsseEnvelope {
  return signEnvelope(SCENARIO_PAYLOAD_TYPE, canonicalScenario(scenario), [key]);
}

export interface ScenarioTrust {
  mode: ScenarioTrustMode;
  trust: TrustView;
  /** The permission patterns a publisher is granted (./permissions.ts readGrants). */
  grants: (publisher: { keyid: string; name: string }) => string[];
  /** Keys that vouch only for scenario files under the built-in folders (see the module comment). */
  builtin?: BuiltinScenarioKeys;
}

export interface BuiltinScenarioKeys {
  /** The folders of the scenarios shipped with the app. */
  scenarioDirs: readonly string[];
  /** Whether `keyid` is a built-in key the operator has not trusted in their own folder (re-read per call). */
  isBuiltinOnly: (keyid: string) => boolean;
}

/**
 * The built-in keys policy: the keys of `builtinTrust` that `userTrust` does not also hold vouch only for scenario
 * files under `scenarioDirs`.
 */
export function builtinScenarioKeys(builtinTrust: TrustView, userTrust: TrustView | undefined, scenarioDirs: readonly string[]): BuiltinScenarioKeys {
  return {
    scenarioDirs,
    isBuiltinOnly: (keyid) => builtinTrust.list().some((k) => k.keyid === keyid) && !(userTrust?.list().some((k) => k.keyid === keyid) ?? false),
  };
}

/** Whether `file` lies under one of `dirs` (symbolic links resolved). */
function isUnder(file: string, dirs: readonly string[]): boolean {
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return resolve(p);
    }
  };
  const f = real(file);
  return dirs.some((d) => f.startsWith(real(d) + sep));
}

export interface VerifiedScenario {
  cid: string;
  publisher: { keyid: string; name: string };
  /** What its steps may use (its declared list; `[]` when it declares none). */
  permissions: string[];
}

/**
 * Verifies the `.sig` beside `file` for `scenario` (loaded from that file).
 * @throws TesseraError SCENARIO_UNSIGNED, SCENARIO_SIGNATURE_INVALID, KEY_UNKNOWN, KEY_REVOKED,
 *   SCENARIO_KEY_NOT_ALLOWED, SCENARIO_PERMISSION_NOT_GRANTED — each message starts with the file.
 */
export function verifyScenario(scenario: Scenario, file: string, policy: Pick<ScenarioTrust, 'trust' | 'grants' | 'builtin'>): VerifiedScenario {
  const sigFile = signatureFileOf(file);
  if (!existsSync(sigFile)) throw new TesseraError('SCENARIO_UNSIGNED', `${file}: no signature (${basename(sigFile)}) beside it; sign it with \`tessera scenario sign ${basename(file)} --key KEY\`, or load it in developer mode.`, { details: { file } });
  let envelope: DsseEnvelope;
  try {
    if (statSync(sigFile).size > MAX_SIG_FILE_BYTES) throw new Error(`larger than ${MAX_SIG_FILE_BYTES} bytes`);
    envelope = parseEnvelope(JSON.parse(readFileSync(sigFile, 'utf8')));
  } catch (err) {
    throw new TesseraError('SCENARIO_SIGNATURE_INVALID', `${file}: ${basename(sigFile)} is not a DSSE envelope (${(err as Error).message}).`, { details: { file } });
  }
  if (envelope.payloadType !== SCENARIO_PAYLOAD_TYPE) throw new TesseraError('SCENARIO_SIGNATURE_INVALID', `${file}: ${basename(sigFile)} signs a ${envelope.payloadType}, not a scenario (${SCENARIO_PAYLOAD_TYPE}).`, { details: { file } });
  let signed;
  try {
    signed = verifyTrusted(envelope, policy.trust);
  } catch (err) {
    if (!isTesseraError(err)) throw err;
    const code = err.code === 'SIGNATURE_INVALID' ? 'SCENARIO_SIGNATURE_INVALID' : err.code;
    throw new TesseraError(code, `${file}: ${err.message}`, { details: { file, ...(err.details as object | undefined) } });
  }
  const canonical = canonicalScenario(scenario);
  const same = canonical.length === signed.payload.length && canonical.every((b, i) => b === signed.payload[i]);
  if (!same) {
    throw new TesseraError('SCENARIO_SIGNATURE_INVALID', `${file}: the scenario (or a fragment it includes) differs from what ${signed.name} (${signed.keyid}) signed (cid ${cidOfBytes(signed.payload)}, now ${cidOfBytes(canonical)}); re-sign it.`, { details: { file } });
  }
  const publisher = { keyid: signed.keyid, name: signed.name };
  if (policy.builtin && policy.builtin.isBuiltinOnly(signed.keyid) && !isUnder(file, policy.builtin.scenarioDirs)) {
    throw new TesseraError('SCENARIO_KEY_NOT_ALLOWED', `${file}: signed by the built-in key ${publisher.name} (${publisher.keyid}), which vouches only for the scenarios shipped with Tessera (${policy.builtin.scenarioDirs.join(', ')}); its private half is public. Sign it with your own key (tessera keygen, then tessera trust add).`, { details: { file, keyid: publisher.keyid } });
  }
  const permissions = scenario.permissions ?? [];
  const granted = policy.grants(publisher);
  const missing = ungranted(permissions, granted);
  if (missing.length > 0) {
    throw new TesseraError('SCENARIO_PERMISSION_NOT_GRANTED', `${file}: scenario ${scenario.id} declares ${missing.join(', ')}, which its publisher ${publisher.name} (${publisher.keyid}) is not granted (grants: ${granted.length === 0 ? 'none' : granted.join(', ')}; see grants.json in the trust folder).`, { details: { file, missing } });
  }
  return { cid: cidOfBytes(canonical), publisher, permissions };
}

export type Admission =
  | { loaded: true; scenario: Scenario; verified?: VerifiedScenario; warning?: { code: string; message: string } }
  | { loaded: false; error: TesseraError };

/**
 * Decides whether `scenario` (loaded from `file`) may be registered under `policy`; see the module comment. A signed
 * scenario with no `permissions` comes back with `permissions: []`.
 */
export function admitScenario(scenario: Scenario, file: string, policy: ScenarioTrust): Admission {
  try {
    const verified = verifyScenario(scenario, file, policy);
    return { loaded: true, scenario: scenario.permissions ? scenario : { ...scenario, permissions: [] }, verified };
  } catch (err) {
    if (!isTesseraError(err)) throw err;
    if (policy.mode !== 'developer' || err.code === 'KEY_REVOKED') return { loaded: false, error: err };
    const anything = scenario.permissions === undefined ? ' It declares no permissions, so its steps may use anything.' : '';
    return { loaded: true, scenario, warning: { code: err.code, message: `developer mode: loaded ${file} unverified (${err.code}: ${err.message}).${anything}` } };
  }
}
