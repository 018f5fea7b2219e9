/**
 * Inside Electron the sandbox host runs as a `utilityProcess` (a Node-enabled child that Electron supervises
 * and that does not need the Electron binary to re-exec as Node), as issue 3 §1 asks; headless uses
 * child_process.fork. Both speak sandbox/protocol.ts; sandbox/host-main.ts picks `process.parentPort` here.
 */
import { utilityProcess } from 'electron';
import type { ChildHandle, ProcessLauncher } from '../../sandbox/client.js';
import type { HostToRuntime } from '../../sandbox/protocol.js';

export const utilityProcessLauncher: ProcessLauncher = ({ file, execArgv }): ChildHandle => {
  // --import tsx only applies to running from source, which the Electron shell never does.
  const child = utilityProcess.fork(file, [], { execArgv: execArgv.filter((a) => a !== '--import' && a !== 'tsx'), serviceName: 'Tessera sandbox host', stdio: 'inherit' });
  return {
    get pid() {
      return child.pid;
    },
    send: (message) => child.postMessage(message),
    onMessage: (listener) => child.on('message', (message: unknown) => listener(message as HostToRuntime)),
    onExit: (listener) => child.on('exit', (code: number) => listener(code, null)),
    kill: () => void child.kill(),
  };
};
