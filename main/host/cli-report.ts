/**
 * How CLI commands report failures: a TesseraError prints as `error CODE: message` on stderr and exits 1, or 2
 * for usage errors (CONFIG_INVALID); anything else is a bug and propagates to the CLI's top-level handler.
 */
import { isTesseraError } from '../common/errors.js';
import type { CliIo } from './cli.js';

/** Run `body`, turning a TesseraError into its message and exit code. */
export async function reporting(io: CliIo, body: () => Promise<number> | number): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (!isTesseraError(err)) throw err;
    io.stderr(`error ${err.code}: ${err.message}\n`);
    return err.code === 'CONFIG_INVALID' ? 2 : 1;
  }
}
