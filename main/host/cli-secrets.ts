/**
 * `tessera secret list|set|delete`: the secrets of a running Tessera (main/runtime/secrets; routes in
 * http/secrets.ts), e.g. the agents' model API key `agents.model.api_key`, over its HTTP API with an operator token.
 *
 * The value of `secret set` comes from standard input only, never from the command line, which other users of the
 * machine read in `ps` and which shells keep in their history: `printf %s "$KEY" | tessera secret set NAME`. On a
 * terminal it is typed without echo. Nothing prints a value; `list` prints names.
 */
import { readFileSync } from 'node:fs';
import { TesseraError } from '../common/errors.js';
import { apiClient, connection, connectionFlags } from './cli-api.js';
import { reporting } from './cli-report.js';
import type { CliIo, Command } from './cli.js';

const json = { json: { type: 'boolean' } } as const;
const enc = encodeURIComponent;

function nameOf(positionals: string[], usage: string): string {
  const name = positionals[0];
  if (name === undefined) throw new TesseraError('CONFIG_INVALID', `NAME is required (e.g. agents.model.api_key). Usage: ${usage}`);
  return name;
}

/**
 * One line typed on the terminal without echo (raw mode: Enter ends it, Backspace erases, Ctrl+C cancels).
 * The caller must only call it when standard input is a TTY.
 */
function readHiddenLine(prompt: string, io: CliIo): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    let chars: string[] = [];
    const finish = (err?: TesseraError) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      io.stderr('\n');
      if (err) reject(err);
      else resolve(chars.join(''));
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish();
        if (ch === '\u0003') return finish(new TesseraError('CONFIG_INVALID', 'Canceled; no secret was set.'));
        if (ch === '\u007f' || ch === '\b') chars = chars.slice(0, -1);
        else chars.push(ch);
      }
    };
    stdin.setEncoding('utf8');
    // Raw before the prompt: what is typed once the prompt shows must not be echoed.
    stdin.setRawMode(true);
    io.stderr(prompt);
    stdin.on('data', onData);
    stdin.resume();
  });
}

/** The value on standard input: all of it from a pipe or file (one trailing newline dropped), a hidden line from a terminal. */
async function readValue(name: string, io: CliIo): Promise<string> {
  const value = process.stdin.isTTY
    ? await readHiddenLine(`Value of secret ${name} (not shown; Enter to finish): `, io)
    : readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  if (value.trim() === '') throw new TesseraError('CONFIG_INVALID', `The value is empty; nothing was set. Pipe it on standard input: printf %s "$VALUE" | tessera secret set ${name}`);
  return value;
}

const secretList: Command = {
  name: 'secret list',
  summary: 'List the names of the secrets stored on a running Tessera (never their values; operator).',
  usage: 'tessera secret list [--json] [--url URL] [--token T] [--data DIR]',
  options: { ...connection, ...json },
  flags: [['--json', 'Print {"secrets": [names]} as JSON.'], ...connectionFlags],
  run(values, _positionals, io) {
    return reporting(io, async () => {
      const answer = (await apiClient(values, io)('GET', '/api/secrets')) as { secrets: string[] };
      if (values['json']) io.stdout(`${JSON.stringify(answer, null, 2)}\n`);
      else io.stdout(answer.secrets.length === 0 ? 'No secrets.\n' : `${answer.secrets.join('\n')}\n`);
      return 0;
    });
  },
};

const secretSet: Command = {
  name: 'secret set',
  summary: 'Store a secret on a running Tessera, its value read from standard input (e.g. the agents\' model key; operator).',
  usage: 'tessera secret set NAME [--url URL] [--token T] [--data DIR]   (printf %s "$KEY" | tessera secret set agents.model.api_key)',
  options: { ...connection },
  flags: [...connectionFlags],
  // The second is accepted only to refuse it without echoing it back (a value given as an argument).
  positionals: 2,
  run(values, positionals, io) {
    return reporting(io, async () => {
      if (positionals.length > 1) {
        throw new TesseraError('CONFIG_INVALID', 'The value is read from standard input, never from the command line (other users see arguments in `ps`, shells keep them in history): printf %s "$VALUE" | tessera secret set NAME');
      }
      const name = nameOf(positionals, this.usage);
      const api = apiClient(values, io);
      const value = await readValue(name, io);
      await api('PUT', `/api/secrets/${enc(name)}`, { value });
      io.stdout(`Secret ${name} set.\n`);
      return 0;
    });
  },
};

const secretDelete: Command = {
  name: 'secret delete',
  summary: 'Delete a secret from a running Tessera (operator); NOT_FOUND when there is none by that name.',
  usage: 'tessera secret delete NAME [--url URL] [--token T] [--data DIR]',
  options: { ...connection },
  flags: [...connectionFlags],
  positionals: 1,
  run(values, positionals, io) {
    return reporting(io, async () => {
      const name = nameOf(positionals, this.usage);
      await apiClient(values, io)('DELETE', `/api/secrets/${enc(name)}`);
      io.stdout(`Secret ${name} deleted.\n`);
      return 0;
    });
  },
};

/** `secret list`, `secret set`, `secret delete`. */
export const SECRET_COMMANDS: Command[] = [secretList, secretSet, secretDelete];
