import { render } from 'preact';
import type { TesseraBridge } from '../../main/common/bridge.js';
import { App } from './app.js';
import { createHttpClient } from './client/http.js';
import { createIpcClient } from './client/ipc.js';
import { forgetToken, saveToken, takeTokenFromLocation } from './client/token.js';
import { ConnectScreen } from './connect.js';
import './styles.css';

const root = document.getElementById('app')!;
const bridge = (window as unknown as { tesseraBridge?: TesseraBridge }).tesseraBridge;

function boot(): void {
  if (bridge) {
    render(<App client={createIpcClient(bridge)} transport="ipc" />, root);
    return;
  }
  const token = takeTokenFromLocation();
  if (!token) {
    render(<ConnectScreen onToken={(t) => { saveToken(t); boot(); }} />, root);
    return;
  }
  const client = createHttpClient({
    token,
    onUnauthorized: () => {
      forgetToken();
      render(<ConnectScreen rejected onToken={(t) => { saveToken(t); boot(); }} />, root);
    },
  });
  // An operator unlock gets its own client; when the runtime ends that session (expiry, restart) the UI falls
  // back to the kiosk's own credential, not to the connect screen.
  const elevate = (sessionToken: string, onEnded: () => void) => createHttpClient({ token: sessionToken, onUnauthorized: onEnded });
  render(<App client={client} transport="http" elevate={elevate} />, root);
}

boot();
