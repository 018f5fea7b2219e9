import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, TesseraError, fromErrorData, isTesseraError, toErrorData } from '../../main/common/errors.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const documented = new Map([...doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])]));

describe('error codes', () => {
  it('documents every code with its HTTP status in docs/errors.md', () => {
    for (const [code, { status }] of Object.entries(ERROR_CODES)) {
      expect(documented.get(code), `${code} missing from docs/errors.md`).toBe(status);
    }
  });

  it('has no documented code that does not exist', () => {
    for (const code of documented.keys()) expect(Object.keys(ERROR_CODES)).toContain(code);
  });

  it('round-trips through toErrorData / fromErrorData without instanceof', () => {
    const err = new TesseraError('TOPIC_INVALID', 'bad topic', { details: { topic: 'a..b' } });
    const copy = fromErrorData(JSON.parse(JSON.stringify(toErrorData(err))));
    expect(isTesseraError(copy)).toBe(true);
    expect(copy).toMatchObject({ code: 'TOPIC_INVALID', message: 'bad topic', details: { topic: 'a..b' }, status: 400 });
    // a plain object from another realm with the right name and code counts too
    expect(isTesseraError({ name: 'TesseraError', code: 'NOT_FOUND' })).toBe(true);
  });

  it('hides the message of unexpected faults and restores malformed data as INTERNAL', () => {
    expect(toErrorData(new Error('secret path /etc/shadow'))).toEqual({ code: 'INTERNAL', message: 'Internal error; see the runtime log.' });
    expect(fromErrorData({ code: 'NO_SUCH_CODE', message: 'x' }).code).toBe('INTERNAL');
    expect(fromErrorData(null).code).toBe('INTERNAL');
  });

  it('carries retryability as a field, overridable per error', () => {
    expect(new TesseraError('NOT_READY', 'starting').retryable).toBe(true);
    expect(toErrorData(new TesseraError('INTERNAL', 'x', { retryable: true }))).toMatchObject({ retryable: true });
  });
});
