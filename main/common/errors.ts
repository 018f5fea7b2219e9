/**
 * The one list of Tessera error codes (STYLE.md §4). Every code here is documented in docs/errors.md and a
 * test checks both directions. Codes are stable: they travel in the HTTP error shape
 * `{"error":{"code","message"}}`, in CLI messages, over IPC and in the journal. Never rename one; add new ones.
 *
 * Pure module: shared by the runtime, the renderer and (later) the sandbox.
 */
export const ERROR_CODES = {
  UNAUTHORIZED: { status: 401, retryable: false, summary: 'The request has no valid bearer token.' },
  FORBIDDEN: { status: 403, retryable: false, summary: 'The caller is known but may not do this.' },
  HOST_NOT_ALLOWED: { status: 421, retryable: false, summary: "The request's Host (or a WebSocket's Origin) is not an address this server listens on." },
  PIN_NOT_SET: { status: 409, retryable: false, summary: 'No operator PIN is set on this device.' },
  PIN_INVALID: { status: 403, retryable: false, summary: 'The operator PIN is wrong.' },
  PIN_LOCKED: { status: 429, retryable: true, summary: 'Too many wrong PINs: operator unlock is locked for a while.' },
  VALIDATION_FAILED: { status: 400, retryable: false, summary: 'The input does not match the schema of the route, command or message.' },
  TOPIC_INVALID: { status: 400, retryable: false, summary: 'An event topic or topic pattern is malformed.' },
  TRACE_ID_INVALID: { status: 400, retryable: false, summary: 'A trace id is malformed.' },
  PAYLOAD_TOO_LARGE: { status: 413, retryable: false, summary: 'A body or event payload is over its size limit.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, retryable: false, summary: 'The body is not JSON.' },
  NOT_FOUND: { status: 404, retryable: false, summary: 'No route or resource by that name.' },
  METHOD_NOT_ALLOWED: { status: 405, retryable: false, summary: 'The route exists but not with that method.' },
  NOT_READY: { status: 503, retryable: true, summary: 'The runtime is starting or stopping; try again shortly.' },
  STORE_UNAVAILABLE: { status: 503, retryable: true, summary: 'The database could not be opened or is closed.' },
  STORE_BUSY: { status: 503, retryable: true, summary: 'Another process holds the database\'s write lock (SQLITE_BUSY or SQLITE_LOCKED): nothing of the request was written; retry shortly.' },
  STORE_FULL: { status: 507, retryable: true, summary: 'The disk holding the database is full: nothing of the request was written; free space and retry.' },
  STORE_MIGRATION_FAILED: { status: 500, retryable: false, summary: 'A schema migration failed; the database was left at its previous version.' },
  STORE_TOO_NEW: { status: 500, retryable: false, summary: 'The database was written by a newer Tessera than this one.' },
  CONFIG_INVALID: { status: 400, retryable: false, summary: 'A command-line flag or environment variable has an invalid value.' },
  DATA_DIR_LOCKED: { status: 409, retryable: false, summary: 'Another running Tessera (the message names its pid) holds the lock on this data folder; one runtime per data folder.' },
  DATA_DIR_UNUSABLE: { status: 500, retryable: false, summary: 'The data folder cannot be created, read or written.' },
  PORT_IN_USE: { status: 500, retryable: false, summary: 'The HTTP port is taken by another process.' },
  IPC_SENDER_REJECTED: { status: 403, retryable: false, summary: 'An IPC message came from a frame that is not the Tessera UI.' },
  SIGNATURE_INVALID: { status: 400, retryable: false, summary: 'A DSSE envelope is malformed or its signature does not verify.' },
  KEY_UNKNOWN: { status: 403, retryable: false, summary: 'Signed by a key that is not in the trust store.' },
  KEY_REVOKED: { status: 403, retryable: false, summary: 'Signed by a key that the trust store has revoked.' },
  KEY_FILE_INVALID: { status: 400, retryable: false, summary: 'A key file cannot be read or is not an Ed25519 key in the expected format.' },
  PLUGIN_NOT_FOUND: { status: 404, retryable: false, summary: 'No plugin by that name, version or folder.' },
  PLUGIN_MANIFEST_INVALID: { status: 400, retryable: false, summary: 'plugin.json is missing or does not match the manifest schema.' },
  PLUGIN_UNSIGNED: { status: 400, retryable: false, summary: 'The plugin has no plugin.sig.' },
  PLUGIN_TAMPERED: { status: 400, retryable: false, summary: "A plugin file no longer matches the content id its signed manifest records." },
  CAPABILITY_NOT_GRANTABLE: { status: 403, retryable: false, summary: "The plugin requests a capability the runtime's trust policy does not grant it." },
  CAPABILITY_DENIED: { status: 403, retryable: false, summary: 'A capability call was refused: not granted, no valid permit, or outside its allowlist.' },
  PERMIT_INVALID: { status: 403, retryable: false, summary: 'A permit is missing, expired, bound to another input, or not signed by a trusted key.' },
  PLUGIN_FAILED: { status: 422, retryable: false, summary: 'The plugin threw an error or used something the sandbox forbids.' },
  PLUGIN_OUTPUT_INVALID: { status: 422, retryable: false, summary: "The plugin's output is not JSON, is too large, or does not match its kind's schema." },
  PLUGIN_TIMEOUT: { status: 422, retryable: false, summary: 'The plugin ran past its CPU time limit or its promise did not settle before the deadline.' },
  PLUGIN_MEMORY_EXCEEDED: { status: 422, retryable: false, summary: 'The plugin went over its memory limit; its isolate was disposed.' },
  SANDBOX_UNAVAILABLE: { status: 503, retryable: true, summary: 'The sandbox host process is down or restarting; calls in flight failed.' },
  SCENARIO_NOT_FOUND: { status: 404, retryable: false, summary: 'No scenario by that id is registered.' },
  TRIGGER_PATTERN_REFUSED: { status: 400, retryable: false, summary: "A trigger's pattern matches only the runtime's own scenario.* or trigger.* events, which never start a trigger." },
  SCENARIO_INVALID: { status: 400, retryable: false, summary: 'A scenario file does not match the scenario schema; the message points at the line and field.' },
  SCENARIO_UNSIGNED: { status: 403, retryable: false, summary: 'A scenario file has no signature beside it (FILE.sig) and the runtime is not in developer mode.' },
  SCENARIO_SIGNATURE_INVALID: { status: 403, retryable: false, summary: "A scenario's signature does not verify, or the scenario (or a fragment it includes) differs from what was signed." },
  SCENARIO_PERMISSION_NOT_GRANTED: { status: 403, retryable: false, summary: "A scenario declares a permission its publisher is not granted by the trust folder's grants.json." },
  SCENARIO_KEY_NOT_ALLOWED: { status: 403, retryable: false, summary: 'A scenario outside the built-in scenarios folder is signed by a built-in key (the public development key), which vouches only for the scenarios shipped with Tessera.' },
  PERMISSION_DENIED: { status: 403, retryable: false, summary: 'A scenario step used something (tts, stt, a secret, a tool, a bus topic) its scenario does not declare; refused before any effect.' },
  GRANTS_INVALID: { status: 400, retryable: false, summary: "A trust folder's grants.json is not valid; the message names the file and the entry." },
  RUN_NOT_FOUND: { status: 404, retryable: false, summary: 'No scenario run by that id.' },
  QUEUE_FULL: { status: 429, retryable: true, summary: 'The run queue is full; retry later or pass force.' },
  STEP_FAILED: { status: 422, retryable: false, summary: 'A scenario step failed after its retries; the run failed and compensations ran.' },
  STEP_TIMEOUT: { status: 422, retryable: true, summary: 'A scenario step or run went past its timeout.' },
  RUN_FENCED: { status: 409, retryable: false, summary: 'Another node claimed this distributed run since this node took it: the stale node\'s step, effect or ack is refused and it stops the run.' },
  RUN_DELIVERY_EXHAUSTED: { status: 422, retryable: false, summary: 'A distributed run was delivered more times than its scenario\'s max_deliver allows: it failed for good.' },
  RUN_REFUSED: { status: 422, retryable: false, summary: 'The node a distributed run was delivered to lacks its scenario\'s constraints: it refused the run and failed it for good.' },
  CLUSTER_NOT_CONFIGURED: { status: 404, retryable: false, summary: 'This runtime runs without a cluster (started without --nats / TESSERA_NATS_URL): it has no nodes or distributed runs to show.' },
  RUN_CANCELLED: { status: 409, retryable: false, summary: 'The run was cancelled.' },
  EXECUTION_NOT_FOUND: { status: 404, retryable: false, summary: 'No execution by that id.' },
  EXECUTION_STATE_INVALID: { status: 409, retryable: false, summary: 'The execution cannot move to that state from the one it is in.' },
  ARTIFACT_NOT_FOUND: { status: 404, retryable: false, summary: 'No artifact by that id.' },
  ARTIFACT_STATE_INVALID: { status: 409, retryable: false, summary: 'The artifact cannot move to that state from the one it is in.' },
  STATE_VERSION_CONFLICT: { status: 409, retryable: true, summary: 'The state key changed since it was read; read it again and retry.' },
  QUOTA_EXCEEDED: { status: 429, retryable: false, summary: "A daily quota is used up for this node or user; the message says when it resets." },
  SECRET_UNREADABLE: { status: 500, retryable: false, summary: 'A stored secret cannot be decrypted: its ciphertext was altered or the key file is not the one it was written with.' },
  VOICE_UNAVAILABLE: { status: 503, retryable: false, summary: 'A speech engine, the microphone or the audio output is not available here; the message says what is missing and how to install it.' },
  AUDIO_INVALID: { status: 422, retryable: false, summary: 'Audio input is empty, not a RIFF WAV, or in a format that cannot be read (16-bit PCM, 1–2 channels, 8–96 kHz).' },
  LOCK_TIMEOUT: { status: 409, retryable: true, summary: 'A lock (mic, tts, or one a step declares) was not granted within its timeout; another run holds it.' },
  MIC_BUSY: { status: 409, retryable: true, summary: 'Another audio stream is using the microphone; one stream at a time.' },
  IO_ASK_NOT_FOUND: { status: 404, retryable: false, summary: 'No question is waiting for an answer with that run id and step.' },
  IO_SESSION_ENDED: { status: 409, retryable: false, summary: 'The dialogue session has ended (the next traveller was announced, or it was idle) or does not exist; start a new one with POST /api/io/session.' },
  INTENT_LIST_NOT_DYNAMIC: { status: 400, retryable: false, summary: 'Values were set at run time for an intent slot list that the rule set does not declare dynamic: true (or does not have).' },
  WEBHOOK_URL_INVALID: { status: 400, retryable: false, summary: 'A webhook URL is not an absolute http:// or https:// URL, carries credentials or a fragment, or is too long.' },
  WEBHOOK_NOT_FOUND: { status: 404, retryable: false, summary: 'No webhook subscription by that id.' },
  PRODUCT_INVALID: { status: 400, retryable: false, summary: 'A product manifest does not match resources/schema/product.schema.json or its lock file; the message names the file and fields.' },
  PRODUCT_NOT_FOUND: { status: 404, retryable: false, summary: 'No loaded product by that name.' },
  PRODUCTDEF_INVALID: { status: 400, retryable: false, summary: 'A ProductDef does not match resources/schema/productdef.schema.json (or a rule it cannot state); the message names the fields.' },
  PRODUCTDEF_NOT_FOUND: { status: 404, retryable: false, summary: 'No ProductDef in the catalogue matches that id, id@range or cid.' },
  PRODUCTDEF_CONFLICT: { status: 409, retryable: false, summary: 'The catalogue already holds this id@version with other content; a published version is never changed: publish a new version.' },
  JOURNEY_DOC_INVALID: { status: 400, retryable: false, summary: 'A journey document does not match resources/schema/journey.schema.json or a rule it cannot state (duplicate ids, unknown places or nodes, an unreachable node, a cycle in next, a venue the product does not list, opening hours that never fit); the message lists each problem with its JSON-pointer path.' },
  JOURNEY_DOC_NOT_FOUND: { status: 404, retryable: false, summary: 'No journey document in the catalogue matches that id, id@range, id@version or cid; the message says what is held.' },
  JOURNEY_DOC_CONFLICT: { status: 409, retryable: false, summary: 'The catalogue already holds this journey id@version with other content; a published version is never changed: publish a new version.' },
  CITY_PACKAGE_MISSING: { status: 404, retryable: false, summary: 'No usable city data package is installed (or the one installed is stale or fails verification): routing uses the journeys\' static routes.' },
  CITY_PACKAGE_INVALID: { status: 400, retryable: false, summary: 'A city data package fails verification: its manifest is malformed, a file is missing or does not match its signed cid, or graph.json or a GTFS file does not parse; the message names the file.' },
  CITY_PACKAGE_STALE: { status: 409, retryable: false, summary: 'The city data package verifies but the clock is past its valid_until: install a newer one.' },
  ROUTING_UNAVAILABLE: { status: 503, retryable: false, summary: 'Route planning on the city package is not available (the package is missing, stale or invalid); use the journey document\'s static route.' },
  VIEW_INVALID: { status: 400, retryable: false, summary: 'The JSON view of POST /v1/run is not valid: bad JSON, a bad value (huge number, lone surrogate, forbidden key) or a missing or bad hdr; the message names the path.' },
  VIEW_TOO_LARGE: { status: 413, retryable: false, summary: 'The JSON view is over its size limit (64 KiB).' },
  VIEW_TOO_DEEP: { status: 400, retryable: false, summary: 'The JSON view nests deeper than its limit (32 levels).' },
  REPLAY_BLOCKED: { status: 409, retryable: false, summary: 'A request with this (hdr.src, hdr.nonce) was already received; send a new nonce.' },
  REQUEST_EXPIRED: { status: 400, retryable: false, summary: "The request's hdr.exp is at or before the device's time; it was not decided." },
  CAPSULE_NOT_FOUND: { status: 404, retryable: false, summary: 'No capsule (receipt chain) by that cid on this device.' },
  LINK_NOT_FOUND: { status: 404, retryable: false, summary: 'No capability link by that token or id: unknown, revoked and expired links get this one answer.' },
  CONSENT_NOT_FOUND: { status: 404, retryable: false, summary: 'No consent request by that id.' },
  CONSENT_CLOSED: { status: 409, retryable: false, summary: 'The consent request was already approved or rejected, or this approver already voted.' },
  CHAIN_INVALID: { status: 500, retryable: false, summary: 'A receipt chain failed verification (signature, id, prev link or capsule binding); the message names the receipt and field.' },
  LOG_NOT_FOUND: { status: 404, retryable: false, summary: "The receipt is not in this device's log, or not within the tree size asked for." },
  LOG_RANGE_INVALID: { status: 400, retryable: false, summary: 'A tree size is outside the device log: sizes go from 0 to the current size, and from ≤ to.' },
  BUNDLE_ZIP_INVALID: { status: 422, retryable: false, summary: 'The bundle is not a well-formed Tessera ZIP: unreadable, too large, not in its exact layout, or a file fails its CRC-32; the message names the place.' },
  BUNDLE_ENTRY_INVALID: { status: 422, retryable: false, summary: 'The bundle has a missing, unexpected, duplicate or unsafe (path traversal) entry; the message names it.' },
  BUNDLE_HASH_MISMATCH: { status: 422, retryable: false, summary: 'A file of the bundle does not match the hash index.json records for it; the message names the file.' },
  BUNDLE_INDEX_INVALID: { status: 422, retryable: false, summary: "index.json is malformed or its signature (index.sig) does not verify with the bundle's device key." },
  BUNDLE_KEY_INVALID: { status: 422, retryable: false, summary: 'A bundled public key is not an Ed25519 SPKI PEM, or its keyid is not the one keys/keys.json records.' },
  BUNDLE_CAPSULE_MISMATCH: { status: 422, retryable: false, summary: "capsule.json's cid is not the capsule the index and the receipts name." },
  BUNDLE_CHAIN_INVALID: { status: 422, retryable: false, summary: 'A bundled receipt fails: signature, id, prev link, capsule binding or an embedded consent; the message names the file and field.' },
  BUNDLE_PLUGIN_MISMATCH: { status: 422, retryable: false, summary: 'A bundled manifest does not match its cid, or a manifest the capsule or receipts name is missing.' },
  BUNDLE_LOG_INVALID: { status: 422, retryable: false, summary: "The signed tree head or a receipt's inclusion proof in log/inclusion.json does not verify." },
  BUNDLE_WITNESS_INVALID: { status: 422, retryable: false, summary: "log/cosignature.json is not the cloud's valid co-signature of the bundle's tree head." },
  INSUFFICIENT_FUNDS: { status: 402, retryable: false, summary: 'The wallet holds less than the payment needs; nothing was taken. An operator can top it up.' },
  LEDGER_UNBALANCED: { status: 400, retryable: false, summary: 'A ledger transaction whose postings do not sum to zero in each currency; nothing was posted.' },
  IDEMPOTENCY_CONFLICT: { status: 409, retryable: false, summary: 'The idempotency key was already used for a different request; use a new key for a new request.' },
  CURRENCY_MISMATCH: { status: 400, retryable: false, summary: 'The amount is in another currency than the payment, wallet or product it is for.' },
  SESSION_NOT_FOUND: { status: 404, retryable: false, summary: 'No product runtime session by that id on this device.' },
  SESSION_TRANSITION_REFUSED: { status: 409, retryable: false, summary: 'The product session cannot make that move from the state it is in (e.g. pay a canceled session, cancel one whose entitlement was used); the message names both states.' },
  SESSION_NOT_ACTIVE: { status: 409, retryable: false, summary: "The product session is not active (not paid yet, or ended): a journey starts only within an active session." },
  JOURNEY_NOT_FOUND: { status: 404, retryable: false, summary: "No journey instance by that id on this device." },
  JOURNEY_NODE_UNKNOWN: { status: 404, retryable: false, summary: "The journey has no node by that id; the message lists its nodes." },
  JOURNEY_CONFLICT: { status: 409, retryable: false, summary: "The journey changed since the version the caller saw (another screen, a redemption, the agent): read it again; `details.current_version` says where it is." },
  JOURNEY_ENDED: { status: 409, retryable: false, summary: "The journey is completed or abandoned: its nodes and proposals can no longer change." },
  PLACE_UNKNOWN: { status: 404, retryable: false, summary: "The journey has no place by that id or name; the message lists its places." },
  ROUTE_NOT_FOUND: { status: 404, retryable: false, summary: "No way there on the city package; `details.static` holds the journey's own static route when it has one." },
  PROPOSAL_NOT_FOUND: { status: 404, retryable: false, summary: "The journey has no proposal by that id." },
  PREFLIGHT_FAILED: { status: 409, retryable: false, summary: 'The product session did not pass its preflight, so it cannot be paid; its preflight reasons say why in words a traveller can read.' },
  ISSUING_PAUSED: { status: 503, retryable: true, summary: 'Issuing is paused by the operator (degraded mode, seed 000 §7.2): no new entitlements; redemption of existing ones goes on.' },
  REDEMPTION_NOT_FOUND: { status: 404, retryable: false, summary: 'No redemption by that id on this device.' },
  UNDO_WINDOW_CLOSED: { status: 409, retryable: false, summary: 'The redemption is older than the 2-minute undo window.' },
  ALREADY_UNDONE: { status: 409, retryable: false, summary: 'The redemption was already undone.' },
  ENTITLEMENT_NOT_FOUND: { status: 404, retryable: false, summary: 'No entitlement by that serial on this device.' },
  // Issue 14 (ISSUE14-PLAN.md): owned by H3 (ledger) and H1 (entitlements); the same names and statuses, here so
  // that the wallet UI can tell them apart before those modules merge (keep one copy at merge).
  // Issue 16 (notes/ISSUE16-PLAN.md): the cloud and sync.
  RATE_LIMITED: { status: 429, retryable: true, summary: 'Too many requests from this caller in a minute; retry after the time the message gives.' },
  CLOCK_SKEW: { status: 401, retryable: false, summary: "A signed request's time is too far from the server's clock." },
  DEVICE_UNKNOWN: { status: 401, retryable: false, summary: 'The request is signed by a device key this cloud has not enrolled.' },
  DEVICE_REVOKED: { status: 403, retryable: false, summary: 'The device was revoked by an operator; it must be enrolled again.' },
  ENROLLMENT_INVALID: { status: 403, retryable: false, summary: 'The enrollment code or challenge is unknown, used, expired, or the proof of the device key does not verify.' },
  TENANT_EXISTS: { status: 409, retryable: false, summary: 'A tenant with that id already exists.' },
  LOG_GAP: { status: 409, retryable: false, summary: "An upload does not start where the cloud's accepted copy of the device log ends." },
  LOG_FORKED: { status: 409, retryable: false, summary: "A device's new tree head is not consistent with the head the cloud accepted before: its log was rewritten." },
  RECEIPT_INVALID: { status: 422, retryable: false, summary: 'An uploaded receipt is malformed, badly signed, or breaks its chain.' },
  LEASE_UNAVAILABLE: { status: 409, retryable: false, summary: 'No rights are left to lease for that entitlement.' },
  LEASE_NOT_FOUND: { status: 404, retryable: false, summary: 'No lease by that id for this device.' },
  NOT_ENROLLED: { status: 409, retryable: false, summary: 'This device is not enrolled with a cloud.' },
  CLOUD_UNREACHABLE: { status: 503, retryable: true, summary: 'The cloud could not be reached; the device goes on offline and retries.' },
  AGENT_SESSION_NOT_FOUND: { status: 404, retryable: false, summary: "No agent session by that id." },
  AGENT_SESSION_CLOSED: { status: 409, retryable: false, summary: "The agent session is closed; it keeps its transcript but takes no more messages." },
  AGENT_SESSION_BUSY: { status: 409, retryable: true, summary: "The agent session is in the middle of a turn; one turn at a time: send the message when it has answered." },
  AGENT_SESSION_PAUSED: { status: 409, retryable: false, summary: "The agent session reached a budget limit and waits: resume it with a raised budget (`details.pause` says which budget, its use and its limit)." },
  AGENT_PROFILE_INVALID: { status: 400, retryable: false, summary: "No agent profile by that type, or the profile is invalid; the message names the file and the field." },
  AGENT_DISABLED: { status: 503, retryable: true, summary: "That agent is switched off: it is non-critical and its model is unavailable, or the operator disabled it (seed 000 \u00a77.3)." },
  AGENT_MODEL_FAILED: { status: 502, retryable: true, summary: "The agent's model endpoint refused the connection, answered an error or broke its stream." },
  AGENT_MODEL_TIMEOUT: { status: 504, retryable: true, summary: "The agent's model did not answer in time." },
  AGENT_MODEL_OUTPUT_INVALID: { status: 502, retryable: false, summary: "The agent's model answered something that is not a valid Chat Completions answer (bad stream, bad JSON, bad tool-call arguments)." },
  AGENT_TOOL_FAILED: { status: 502, retryable: false, summary: "An agent's tool call failed: unknown tool, invalid arguments, a timeout, or its MCP server crashed or answered an error." },
  AGENT_ADAPTER_FAILED: { status: 503, retryable: true, summary: "An agent persistence or storage adapter failed; the runtime kept running and reported it." },
  AGENT_RATE_LIMITED: { status: 429, retryable: true, summary: "Too many agent sessions or requests from this caller; try again shortly." },
  AGENT_RUNTIME_STOPPING: { status: 503, retryable: true, summary: "The agent runtime is shutting down; sessions were saved and resume after the restart." },
  AGENT_INPUT_INVALID: { status: 400, retryable: false, summary: "A message to an agent is empty or too long, or a session's metadata is not a JSON object." },
  AGENT_PROPOSAL_NOT_FOUND: { status: 404, retryable: false, summary: "No agent proposal by that id (its cid)." },
  AGENT_PROPOSAL_REFUSED: { status: 403, retryable: false, summary: "The runtime's policy refused the agent's proposal; its RESULT receipt holds every policy's verdict." },
  AGENT_PROPOSAL_DECIDED: { status: 409, retryable: false, summary: "The agent proposal was already approved, rejected, refused or executed; `details.state` says which." },
  AGENT_APPROVAL_REQUIRED: { status: 403, retryable: false, summary: "The proposal needs the approval of someone else (the traveller or an operator, as the product says); the caller may not approve it." },
  AGENT_ACTION_UNKNOWN: { status: 400, retryable: false, summary: "An agent proposed an action the runtime does not know; the message lists the actions it knows." },
  INTERNAL: { status: 500, retryable: false, summary: 'An unexpected fault; the runtime kept running and logged it.' },
} as const satisfies Record<string, { status: number; retryable: boolean; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The serialized form of an error wherever it crosses a boundary (HTTP, IPC, journal, sandbox). */
export interface ErrorData {
  code: ErrorCode;
  message: string;
  retryable?: boolean;
  details?: unknown;
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, value);
}

/**
 * An error with a stable code. Identified by `name` and `code`, not `instanceof`, because it crosses realms
 * (STYLE.md §5): use {@link isTesseraError}.
 */
export class TesseraError extends Error {
  override readonly name = 'TesseraError';
  readonly code: ErrorCode;
  readonly details: unknown;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { details?: unknown; cause?: unknown; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
    this.retryable = options.retryable ?? ERROR_CODES[code].retryable;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }
}

export function isTesseraError(err: unknown): err is TesseraError {
  return typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'TesseraError' && isErrorCode((err as { code?: unknown }).code);
}

/** Serialize any thrown value. Unknown faults become INTERNAL without leaking their message or stack. */
export function toErrorData(err: unknown): ErrorData {
  if (isTesseraError(err)) {
    const data: ErrorData = { code: err.code, message: err.message };
    if (err.retryable !== ERROR_CODES[err.code].retryable) data.retryable = err.retryable;
    if (err.details !== undefined) data.details = err.details;
    return data;
  }
  return { code: 'INTERNAL', message: 'Internal error; see the runtime log.' };
}

/** Restore an error serialized by {@link toErrorData}; malformed input becomes INTERNAL. */
export function fromErrorData(data: unknown): TesseraError {
  if (typeof data === 'object' && data !== null) {
    const { code, message, retryable, details } = data as Record<string, unknown>;
    if (isErrorCode(code) && typeof message === 'string') {
      return new TesseraError(code, message, { details, ...(typeof retryable === 'boolean' ? { retryable } : {}) });
    }
  }
  return new TesseraError('INTERNAL', 'Malformed error data received.');
}
