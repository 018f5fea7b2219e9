/**
 * How a long-running command (`tessera start --headless`, `tessera cloud start`) lives until it is told to stop:
 * the first SIGINT/SIGTERM finishes open requests and closes the database (exit 0, or 1 when closing fails, or 1
 * after 10 s); a second one exits at once (130). The banner is printed once the signals are handled, so a supervisor
 * that signals as soon as it reads the URL gets a clean stop.
 */
import type { Logger } from '../runtime/log/index.js';
import type { CliIo } from './cli.js';

export function serveUntilSignalled(io: CliIo, logger: Logger, close: () => Promise<void>, banner: string): Promise<number> {
  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        io.stderr(`Second ${signal}: exiting without a clean shutdown.\n`);
        process.exit(130);
      }
      stopping = true;
      io.stderr(`${signal} received: finishing open requests and closing the database…\n`);
      const deadline = setTimeout(() => {
        io.stderr('Shutdown took longer than 10 s; exiting.\n');
        process.exit(1);
      }, 10_000);
      deadline.unref();
      close().then(
        () => {
          clearTimeout(deadline);
          io.stderr('Stopped cleanly.\n');
          resolveExit(0);
        },
        (err: unknown) => {
          clearTimeout(deadline);
          logger.error('shutdown failed', { error: err });
          resolveExit(1);
        },
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    io.stdout(banner);
  });
}
