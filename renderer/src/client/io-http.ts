/** The HTTP/WS transport of the Journey Guide's I/O client: `/api/io/*` routes and the `/ws/io` dialogue socket. */
import type { DialogueConnection, DialogueMessage, IoClient, IoInputOutcome, IoSessionStart, IoStatusView } from '../../../main/common/api.js';
import type { Transport } from './transport.js';

export function createHttpIoClient(transport: Transport): IoClient {
  return {
    status: () => transport.request<IoStatusView>('GET', '/api/io/status'),
    session: (req = {}) => transport.request<IoSessionStart>('POST', '/api/io/session', req),
    input: (req) => transport.request<IoInputOutcome>('POST', '/api/io/input', req),
    dialogue(onMessage, onStatus) {
      // The session shown is joined again on every (re)connection: the server forgets a closed socket's.
      let joined: string | null = null;
      const socket = transport.socket('/ws/io', {
        onJson: (data) => onMessage(data as DialogueMessage),
        onOpen: (send) => void (joined && send(JSON.stringify({ type: 'join', session: joined }))),
        ...(onStatus ? { onStatus } : {}),
      });
      const sendJson = (m: unknown) => socket.send(JSON.stringify(m));
      const connection: DialogueConnection = {
        join(session) {
          joined = session;
          sendJson({ type: 'join', session });
        },
        startAudio: (sampleRate, question) => sendJson({ type: 'audio.start', sample_rate: sampleRate, ...(question ?? {}) }),
        sendAudio: (pcm) => {
          socket.send(pcm);
        },
        endAudio: (cancel = false) => sendJson({ type: cancel ? 'audio.cancel' : 'audio.end' }),
        close: () => socket.close(),
      };
      return connection;
    },
  };
}
