/**
 * The webhook callback format and its signature (issue 5 point 8; documented in README "Webhook callbacks").
 *
 * A callback is `POST <url>` with a JSON body (see {@link WebhookBody}) and these headers:
 *
 * - `Content-Type: application/json`
 * - `Idempotency-Key: <key>` — the cid of `{event, data}` ({@link callbackKey}), the same on every attempt;
 *   receivers store a callback once by it.
 * - `Tessera-Event: <event>`, `Tessera-Delivery: <delivery id>`, `Tessera-Attempt: <n>` (informative)
 * - `Tessera-Signature: t=<unix seconds>, keyid=<b3:…>, sig=<standard base64>`
 *
 * `sig` is the device key's Ed25519 signature over the DSSE v1 pre-authentication encoding
 * `PAE("application/vnd.tessera.webhook+json;t=<t>", body)` =
 * `"DSSEv1" SP len(type) SP type SP len(body) SP body` (lengths in bytes, ASCII decimal), where `body` is the
 * exact body bytes. Binding `t` in the payload type lets a receiver refuse old callbacks (replays) without
 * trusting an unsigned header. `openssl pkeyutl -verify -pubin -inkey device.pub -rawin` checks it.
 */
import { cidOf, isCid } from '../../common/cid.js';
import { base64Problem, fromBase64, pae, toBase64 } from '../../common/dsse.js';
import { topicProblem } from '../../common/topics.js';
import type { SigningKey } from '../keys/index.js';
import { verifyEd25519 } from '../keys/index.js';

export const WEBHOOK_PAYLOAD_TYPE = 'application/vnd.tessera.webhook+json';
export const WEBHOOK_BODY_TYPE = 'tessera.webhook.v1';
export const SIGNATURE_HEADER = 'tessera-signature';
/** Default freshness window a receiver (and `/v1/webhook/test`) allows between `t` and its clock. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** The JSON body of every callback. Stable across attempts (stored once in the outbox). */
export interface WebhookBody {
  type: typeof WEBHOOK_BODY_TYPE;
  /** The Idempotency-Key: {@link callbackKey} of `event` and `data`. */
  key: string;
  /** The event name given to `notify` (e.g. `receipt.created`). */
  event: string;
  /** The subject record's cid (what `data.cid` is). */
  cid: string;
  /** Subscription id (`whs_…`). */
  subscription: string;
  /** Delivery id (`whd_…`). */
  delivery: string;
  /** When the record was enqueued (ISO 8601). */
  created_at: string;
  /** The record as given to `notify` (callers pass public projections, see log/mask.ts `ghost`). */
  data: Record<string, unknown>;
}

/**
 * The idempotency key of a callback: the cid (RFC 8785 canonical JSON, BLAKE3) of the delivered record
 * `{"event": <event>, "data": <record>}`. Receivers can recompute it from the parsed body.
 * @throws TesseraError VALIDATION_FAILED when `data` cannot be canonicalized (not JSON, too deep…).
 */
export function callbackKey(event: string, data: Readonly<Record<string, unknown>>): string {
  return cidOf({ event, data });
}

/** The bytes a callback's signature covers. */
export function signedMessage(timestamp: number, body: Uint8Array): Uint8Array {
  return pae(`${WEBHOOK_PAYLOAD_TYPE};t=${timestamp}`, body);
}

/** The `Tessera-Signature` header value for `body` sent at `timestamp` (unix seconds). */
export function signatureHeader(key: SigningKey, timestamp: number, body: Uint8Array): string {
  return `t=${timestamp}, keyid=${key.keyid}, sig=${toBase64(key.sign(signedMessage(timestamp, body)))}`;
}

export interface ParsedSignature {
  t: number;
  keyid: string;
  sig: Uint8Array;
}

/** Parses a `Tessera-Signature` value; returns the reason when it is malformed. */
export function parseSignatureHeader(value: string): ParsedSignature | { problem: string } {
  const fields = new Map<string, string>();
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return { problem: `"${part.trim()}" is not a name=value pair` };
    const name = part.slice(0, eq).trim();
    if (fields.has(name)) return { problem: `"${name}" appears twice` };
    fields.set(name, part.slice(eq + 1).trim());
  }
  const t = fields.get('t');
  const keyid = fields.get('keyid');
  const sig = fields.get('sig');
  if (t === undefined || keyid === undefined || sig === undefined) return { problem: 'it must have t=, keyid= and sig=' };
  if (!/^\d{1,12}$/.test(t)) return { problem: 't must be unix seconds (digits)' };
  if (!isCid(keyid)) return { problem: 'keyid must be a b3: key id' };
  const b64 = base64Problem(sig);
  if (b64 !== null) return { problem: `sig is not base64: ${b64}` };
  const bytes = fromBase64(sig);
  if (bytes.length !== 64) return { problem: `sig must be 64 bytes (Ed25519), not ${bytes.length}` };
  return { t: Number(t), keyid, sig: bytes };
}

export type CallbackCheck =
  | { valid: true; keyid: string; timestamp: number; event: string; cid: string; key: string; delivery: string }
  | { valid: false; reason: string };

export interface CheckOptions {
  /** Keys accepted, by keyid (the device key). */
  lookup: (keyid: string) => { publicKeyRaw: Uint8Array } | undefined;
  /** Receiver's clock, unix seconds. */
  now: number;
  toleranceSeconds?: number;
}

/**
 * Checks a callback as a receiver got it: headers (names case-insensitive) and the exact body text. Returns the
 * first problem found, precisely: a missing or malformed header, an unknown key, a stale or future timestamp,
 * a signature that does not verify, a body that is not the v1 format, or headers that disagree with the body.
 */
export function checkCallback(headers: Readonly<Record<string, string>>, body: string, options: CheckOptions): CallbackCheck {
  const h = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const header = h.get(SIGNATURE_HEADER);
  if (header === undefined) return { valid: false, reason: 'the Tessera-Signature header is missing' };
  const parsed = parseSignatureHeader(header);
  if ('problem' in parsed) return { valid: false, reason: `the Tessera-Signature header is malformed: ${parsed.problem}` };
  const key = options.lookup(parsed.keyid);
  if (key === undefined) return { valid: false, reason: `the signing key ${parsed.keyid} is not this device's key` };
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(options.now - parsed.t) > tolerance) {
    return { valid: false, reason: `the timestamp t=${parsed.t} is ${Math.abs(options.now - parsed.t)} s from now; at most ${tolerance} s is accepted` };
  }
  const bytes = new TextEncoder().encode(body);
  if (!verifyEd25519(parsed.sig, signedMessage(parsed.t, bytes), key.publicKeyRaw)) {
    return { valid: false, reason: 'the signature does not verify: the body or the timestamp was altered, or another key signed' };
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { valid: false, reason: 'the body is not JSON' };
  }
  const problem = bodyProblem(json);
  if (problem !== null) return { valid: false, reason: `the body is not a ${WEBHOOK_BODY_TYPE} callback: ${problem}` };
  const b = json as WebhookBody;
  const idem = h.get('idempotency-key');
  if (idem === undefined) return { valid: false, reason: 'the Idempotency-Key header is missing' };
  if (idem !== b.key) return { valid: false, reason: `the Idempotency-Key header ${idem} differs from the body's key ${b.key}` };
  const event = h.get('tessera-event');
  if (event !== undefined && event !== b.event) return { valid: false, reason: `the Tessera-Event header ${event} differs from the body's event ${b.event}` };
  return { valid: true, keyid: parsed.keyid, timestamp: parsed.t, event: b.event, cid: b.cid, key: b.key, delivery: b.delivery };
}

function bodyProblem(json: unknown): string | null {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return 'it must be a JSON object';
  const b = json as Record<string, unknown>;
  if (b['type'] !== WEBHOOK_BODY_TYPE) return `"type" must be "${WEBHOOK_BODY_TYPE}"`;
  const topic = topicProblem(b['event']);
  if (topic !== null) return `"event": ${topic}`;
  if (!isCid(b['cid'])) return '"cid" must be a b3: cid';
  if (!isCid(b['key'])) return '"key" must be a b3: cid';
  if (typeof b['subscription'] !== 'string' || !b['subscription'].startsWith('whs_')) return '"subscription" must be a subscription id';
  if (typeof b['delivery'] !== 'string' || !b['delivery'].startsWith('whd_')) return '"delivery" must be a delivery id';
  if (typeof b['created_at'] !== 'string' || Number.isNaN(Date.parse(b['created_at']))) return '"created_at" must be an ISO 8601 time';
  if (typeof b['data'] !== 'object' || b['data'] === null || Array.isArray(b['data'])) return '"data" must be an object';
  let key: string;
  try {
    key = callbackKey(b['event'] as string, b['data'] as Record<string, unknown>);
  } catch {
    return '"data" cannot be canonicalized';
  }
  if (key !== b['key']) return `"key" ${String(b['key'])} is not the cid of {event, data} (${key})`;
  return null;
}
