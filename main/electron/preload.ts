/**
 * The typed preload bridge. Runs sandboxed with context isolation: it exposes exactly three functions on
 * `window.tesseraBridge` and never hands the renderer `ipcRenderer` itself or any Node object.
 */
import { contextBridge, ipcRenderer } from 'electron';
import type { IpcRendererEvent } from 'electron';
import type { TesseraBridge } from '../common/bridge.js';

// Channel names are repeated from ./ipc.ts on purpose: importing it would pull main-process code into the preload.
const bridge: TesseraBridge = {
  invoke: (method, arg) => ipcRenderer.invoke('tessera:invoke', method, arg),
  subscribe: (patterns) => ipcRenderer.invoke('tessera:subscribe', { type: 'subscribe', patterns }),
  onEvent(listener) {
    const wrapped = (_e: IpcRendererEvent, event: unknown) => listener(event as Parameters<typeof listener>[0]);
    ipcRenderer.on('tessera:event', wrapped);
    return () => void ipcRenderer.removeListener('tessera:event', wrapped);
  },
};

contextBridge.exposeInMainWorld('tesseraBridge', bridge);
