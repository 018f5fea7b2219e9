/**
 * The Journey Guide's I/O over IPC (issue 6 point 6, Electron): status, text input, and push-to-talk on the
 * device microphone — captured in the main process (the window is granted no media permission; see
 * ./security.ts). Arguments are validated with the HTTP routes' schemas; results cross as plain data.
 *
 * Methods (through `tessera:invoke`): `ioStatus`; `ioSession {end?}` starts a traveller's dialogue session (ending
 * `end` first), as POST /api/io/session; `ioInput {text, run_id?, step?, session?}`; `ioTalk {action: "start"}`
 * resolves when the utterance ends, with `{outcome, text, result?}`; `ioTalk {action: "stop"}` ends it (the
 * release of the button). One utterance at a time (MIC_BUSY). While the window's event subscription covers
 * the `io.*` events (the Journey Guide is open), the window counts as a connected `ui` channel showing the
 * session it last started or spoke in (one window, one traveller at a time); push-to-talk is heard as that
 * session's.
 */
import Ajv from 'ajv';
import { TesseraError, toErrorData } from '../common/errors.js';
import { ioInputSchema, ioSessionSchema } from '../host/http/io.js';
import type { Disposable } from '../runtime/lifecycle/index.js';
import type { IoRouter } from '../runtime/io/index.js';
import type { IpcResult } from './ipc.js';

const ajv = new Ajv({ allErrors: false });
const validateInput = ajv.compile(ioInputSchema);
const validateSession = ajv.compile(ioSessionSchema);
const validateTalk = ajv.compile({ type: 'object', additionalProperties: false, required: ['action'], properties: { action: { enum: ['start', 'stop'] } } });

export const IO_METHODS = ['ioStatus', 'ioSession', 'ioInput', 'ioTalk'] as const;

export interface IoIpc extends Disposable {
  invoke(method: (typeof IO_METHODS)[number], arg: unknown): Promise<IpcResult>;
  /** The window's subscription changed: it is a `ui` client while it listens to `io.*` events. */
  setUiPresent(present: boolean): void;
}

export function createIoIpc(io: IoRouter): IoIpc {
  let talking: AbortController | undefined;
  let presence: Disposable | undefined;
  // The dialogue session the window shows: the one it started last, or spoke in last.
  let shown: string | null = null;
  return {
    async invoke(method, arg) {
      try {
        switch (method) {
          case 'ioStatus':
            return { ok: true, value: io.status() };
          case 'ioSession': {
            if (!validateSession(arg ?? {})) throw new TesseraError('VALIDATION_FAILED', ajv.errorsText(validateSession.errors));
            const started = io.startSession((arg ?? {}) as { end?: string });
            shown = started.session.id;
            return { ok: true, value: started };
          }
          case 'ioInput': {
            if (!validateInput(arg)) throw new TesseraError('VALIDATION_FAILED', ajv.errorsText(validateInput.errors));
            const { text, run_id, step, session } = arg as { text: string; run_id?: string; step?: string; session?: string };
            const outcome = await io.input(text, { ...(run_id !== undefined ? { run_id } : {}), ...(step !== undefined ? { step } : {}), ...(session !== undefined ? { session } : {}) });
            if (session !== undefined) shown = session; // only an open session it could speak in
            return { ok: true, value: outcome };
          }
          case 'ioTalk': {
            if (!validateTalk(arg)) throw new TesseraError('VALIDATION_FAILED', ajv.errorsText(validateTalk.errors));
            if ((arg as { action: string }).action === 'stop') {
              const was = talking !== undefined;
              talking?.abort(new TesseraError('RUN_CANCELLED', 'push-to-talk released'));
              return { ok: true, value: { stopped: was } };
            }
            if (talking) throw new TesseraError('MIC_BUSY', 'Push-to-talk is already listening; release it first.');
            const controller = (talking = new AbortController());
            try {
              const heard = await io.listen({ signal: controller.signal, ...(shown ? { session: shown } : {}) });
              return { ok: true, value: { outcome: heard.listen.outcome, text: heard.listen.text, ...(heard.outcome ? { result: heard.outcome } : {}) } };
            } finally {
              if (talking === controller) talking = undefined;
            }
          }
        }
      } catch (err) {
        return { ok: false, error: toErrorData(err) };
      }
    },
    setUiPresent(present) {
      // Messages reach the window as the io.* events it subscribed to; the client only marks it present.
      if (present && !presence) presence = io.attachUi({ send: () => undefined, session: () => shown });
      if (!present && presence) {
        void presence.dispose();
        presence = undefined;
      }
    },
    dispose() {
      talking?.abort(new TesseraError('NOT_READY', 'stopping'));
      return presence?.dispose();
    },
  };
}
