import { describe, expect, it } from 'vitest';
import { cidOf } from '../../main/common/cid.js';
import { createLogger, createMasker, createMemoryLogger, ghost, MASKED } from '../../main/runtime/log/index.js';

const SECRETS = {
  bearer: 'tk_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0',
  jwt: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz',
  email: 'alice.smith+tag@example.co.uk',
  phone: '+55 11 98765-4321',
  password: 'correct horse battery staple',
};

/** A logger writing raw lines, so the test sees exactly what would reach stderr. */
function capture(options: Parameters<typeof createLogger>[0] = {}) {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', pretty: false, write: (l) => lines.push(l), ...options });
  return { logger, lines, text: () => lines.join('\n') };
}

describe('masked structured logs', () => {
  it('never writes secrets or PII, whether in masked fields, nested objects, arrays, errors or the message', () => {
    const { logger, text, lines } = capture();
    logger.info(`login by ${SECRETS.email} with Bearer ${SECRETS.bearer}`, {
      headers: { authorization: `Bearer ${SECRETS.bearer}`, cookie: 'sid=abc123', 'x-api-key': 'k-123456', accept: 'application/json' },
      user: { email: SECRETS.email, password: SECRETS.password, contacts: [{ phone: SECRETS.phone }] },
      github_token: 'ghp_abcdefghijklmnop',
      db_password: 'hunter2',
      clientSecret: 's3cr3t',
      note: `call me at ${SECRETS.phone} or write to ${SECRETS.email}; token ${SECRETS.jwt}`,
      url: `https://api.example.com/v1?access_token=${SECRETS.bearer}&city=Berlin`,
      proxy: 'https://bob:pa55word@proxy.example.com:8080/',
      error: new Error(`request with Bearer ${SECRETS.bearer} failed`),
    });
    const out = text();
    for (const [what, secret] of Object.entries({ ...SECRETS, cookie: 'sid=abc123', apikey: 'k-123456', github: 'ghp_abcdefghijklmnop', db: 'hunter2', client: 's3cr3t', proxy: 'pa55word' })) {
      expect(out, what).not.toContain(secret);
    }
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(line['msg']).toBe('login by [masked email] with Bearer [masked]');
    expect(line['headers']).toEqual({ authorization: MASKED, cookie: MASKED, 'x-api-key': MASKED, accept: 'application/json' });
    expect(line['user']).toEqual({ email: MASKED, password: MASKED, contacts: [{ phone: MASKED }] });
    expect(line['note']).toBe('call me at [masked phone] or write to [masked email]; token [masked jwt]');
    expect(line['url']).toBe('https://api.example.com/v1?access_token=[masked]&city=Berlin');
    expect(line['proxy']).toBe('https://[masked]@proxy.example.com:8080/');
    expect(line['error']).toEqual({ name: 'Error', message: 'request with Bearer [masked] failed' });
  });

  it('masks in child loggers and in readable (pretty) lines too', () => {
    const { logger, text } = capture({ pretty: true });
    logger.child({ module: 'http', api_token: SECRETS.bearer }).warn('refused', { authorization: `Bearer ${SECRETS.bearer}` });
    expect(text()).not.toContain(SECRETS.bearer);
    expect(text()).toContain('"api_token":"[masked]"');
  });

  it('leaves ordinary data alone: ids, cids, times, counts, numbers that are not phone numbers', () => {
    const { logger, lines } = capture();
    const fields = { run_id: 'run_123', cid: cidOf('x'), at: '2026-11-24T08:00:00.000Z', max_tokens: 256, tokens_used: 12, keyid: cidOf('k'), status: 500, port: 7420, secret_name: 'weather.api_key', verdict: 'ACK', amount: 1234567890 };
    logger.info('run finished', fields);
    expect(JSON.parse(lines[0]!)).toMatchObject(fields);
  });

  it('adds configured field names and patterns to the defaults, and reads TESSERA_LOG_MASK_FIELDS', () => {
    const { logger, lines } = capture({ mask: { fields: ['customer_ref'], patterns: [{ pattern: /ACCT-\d+/g, replace: '[account]' }] } });
    logger.info('moved ACCT-991', { customerRef: 'C-77', email: SECRETS.email });
    expect(JSON.parse(lines[0]!)).toMatchObject({ msg: 'moved [account]', customerRef: MASKED, email: MASKED });

    const before = process.env['TESSERA_LOG_MASK_FIELDS'];
    process.env['TESSERA_LOG_MASK_FIELDS'] = 'plate, vin';
    try {
      const env = capture();
      env.logger.info('car', { plate: 'ABC-1234', vin: '1HGCM82633A004352', model: 'Civic' });
      expect(JSON.parse(env.lines[0]!)).toMatchObject({ plate: MASKED, vin: MASKED, model: 'Civic' });
    } finally {
      if (before === undefined) delete process.env['TESSERA_LOG_MASK_FIELDS'];
      else process.env['TESSERA_LOG_MASK_FIELDS'] = before;
    }
  });

  it('survives cycles, deep nesting, bytes and maps without throwing', () => {
    const masker = createMasker();
    const a: Record<string, unknown> = { name: 'a' };
    a['self'] = a;
    let deep: Record<string, unknown> = { token: 'x' };
    for (let i = 0; i < 50; i++) deep = { next: deep };
    const out = masker.mask({ a, deep, bytes: new Uint8Array(10), map: new Map([['password', 'p']]) }) as Record<string, unknown>;
    expect(out['a']).toEqual({ name: 'a', self: '[circular]' });
    expect(JSON.stringify(out['deep'])).toContain('[too deep]');
    expect(out['bytes']).toBe('[10 bytes]');
    expect(out['map']).toEqual({ password: MASKED });
  });

  it('masks long adversarial strings in linear time', () => {
    const masker = createMasker();
    for (const text of ['a'.repeat(256 * 1024) + '@', 'a@' + 'b.'.repeat(100_000), '+1 '.repeat(50_000), 'eyJ' + 'a'.repeat(200_000), '//' + 'a'.repeat(200_000), 'token='.repeat(40_000)]) {
      const start = performance.now();
      masker.maskText(text);
      expect(performance.now() - start, text.slice(0, 20)).toBeLessThan(2000); // quadratic matching takes tens of seconds here
    }
  });

  it('keeps the memory logger (used by tests everywhere) masked as well', () => {
    const logger = createMemoryLogger();
    logger.error('boom', { password: SECRETS.password });
    expect(logger.lines[0]).toMatchObject({ msg: 'boom', password: MASKED });
  });
});

describe('ghost', () => {
  it('replaces PII fields by the cid of their value, deterministically, and copies the rest', () => {
    const record = { verdict: 'ACK', user: { email: SECRETS.email, name: 'Alice', id: 'u1' }, contacts: [{ phone: SECRETS.phone, kind: 'mobile' }], amount: 10, note: null };
    const g = ghost(record);
    expect(g).toEqual({ verdict: 'ACK', user: { email: cidOf(SECRETS.email), name: cidOf('Alice'), id: 'u1' }, contacts: [{ phone: cidOf(SECRETS.phone), kind: 'mobile' }], amount: 10, note: null });
    expect(ghost(record)).toEqual(g);
    expect(record.user.email).toBe(SECRETS.email); // the input is not modified
    expect(JSON.stringify(g)).not.toContain('alice');
  });

  it('takes field names or dotted paths with * wildcards', () => {
    const record = { ctx: { customer: { doc: '123.456.789-00', email: 'x@y.io' } }, items: [{ serial: 'S1' }, { serial: 'S2' }], serial: 'top' };
    expect(ghost(record, { fields: ['ctx.customer.doc', 'items.*.serial'] })).toEqual({
      ctx: { customer: { doc: cidOf('123.456.789-00'), email: 'x@y.io' } },
      items: [{ serial: cidOf('S1') }, { serial: cidOf('S2') }],
      serial: 'top',
    });
    // A whole object can be ghosted: its cid is the cid of its canonical JSON.
    expect(ghost({ address: { street: 'Main', n: 1 } })).toEqual({ address: cidOf({ street: 'Main', n: 1 }) });
  });
});
