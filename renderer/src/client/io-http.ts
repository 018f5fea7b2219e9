/** The HTTP/WS transport of the Journey Guide's I/O client: `/api/io/*` routes and the `/ws/io` dialogue socket. */
import type { DialogueConnection, DialogueMessage, IoClient, IoInputOutcome, IoStatusView } from '../../../main/common/api.js';
import type { Transport } from './transport.js';

export function createHttpIoClient(transport: Transport): IoClient {
  return {
    status: () => transport.request<IoStatusView>('GET', '/api/io/status'),
    input: (req) => transport.request<IoInputOutcome>('POST', '/api/io/input', req),
    dialogue(onMessage, onStatus) {
      const socket = transport.socket('/ws/io', { onJson: (data) => onMessage(data as DialogueMessage), ...(onStatus ? { onStatus } : {}) });
      const sendJson = (m: unknown) => socket.send(JSON.stringify(m));
      const connection: DialogueConnection = {
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
