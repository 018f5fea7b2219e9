import { useEffect, useState } from 'preact/hooks';
import type { RuntimeInfo, TesseraClient } from '../../main/common/api.js';
import { JourneyArea } from './areas/journey.js';
import { OpsArea } from './areas/ops.js';
import { RedeemArea } from './areas/redeem.js';
import { StudioArea } from './areas/studio.js';
import { VerifyArea } from './areas/verify.js';

export const AREAS = [
  { id: 'journey', label: 'Journey Guide' },
  { id: 'redeem', label: 'Redeem' },
  { id: 'studio', label: 'Plugin Studio' },
  { id: 'ops', label: 'Ops' },
  { id: 'verify', label: 'Verify' },
] as const;
export type AreaId = (typeof AREAS)[number]['id'];

function areaFromHash(): AreaId {
  const id = location.hash.replace(/^#\/?/, '');
  return AREAS.find((a) => a.id === id)?.id ?? 'journey';
}

function useOnline(): boolean {
  const [online, setOnline] = useState(navigator.onLine);
  useEffect(() => {
    const update = () => setOnline(navigator.onLine);
    addEventListener('online', update);
    addEventListener('offline', update);
    return () => {
      removeEventListener('online', update);
      removeEventListener('offline', update);
    };
  }, []);
  return online;
}

export function App(props: { client: TesseraClient; transport: 'ipc' | 'http' }) {
  const { client } = props;
  const [area, setArea] = useState<AreaId>(areaFromHash());
  const [info, setInfo] = useState<RuntimeInfo | null>(null);
  const [linked, setLinked] = useState(false);
  const online = useOnline();

  useEffect(() => {
    const onHash = () => setArea(areaFromHash());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  useEffect(() => {
    client.info().then(setInfo, () => setInfo(null));
    // The status bar's link to the runtime: a subscription whose connection state is the answer.
    return client.subscribe(['runtime.**'], () => undefined, setLinked);
  }, [client]);

  return (
    <div class="shell">
      <header class="topbar">
        <span class="brand">Tessera</span>
        <nav aria-label="Areas">
          {AREAS.map((a) => (
            <a key={a.id} href={`#/${a.id}`} class={a.id === area ? 'active' : ''} aria-current={a.id === area ? 'page' : undefined} data-area={a.id}>
              {a.label}
            </a>
          ))}
        </nav>
      </header>
      <main class="area" data-testid={`area-${area}`}>
        {area === 'journey' && <JourneyArea client={client} />}
        {area === 'redeem' && <RedeemArea />}
        {area === 'studio' && <StudioArea client={client} />}
        {area === 'ops' && <OpsArea client={client} />}
        {area === 'verify' && <VerifyArea />}
      </main>
      <footer class="statusbar" role="status">
        <span class={online ? 'pill ok' : 'pill warn'} data-testid="network">{online ? 'Online' : 'Offline'}</span>
        <span class={linked ? 'pill ok' : 'pill warn'} data-testid="runtime-link">{linked ? 'Runtime connected' : 'Runtime disconnected'}</span>
        <span class="pill">{props.transport === 'ipc' ? 'Desktop app' : 'Browser'}</span>
        <span class="spacer" />
        <span data-testid="version">{info ? `${info.name} ${info.version}` : 'runtime unreachable'}</span>
      </footer>
    </div>
  );
}
