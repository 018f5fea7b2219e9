import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../main/host/cli.js';
import { startHost } from '../../main/host/headless.js';
import type { RunningHost } from '../../main/host/headless.js';
import type { RedeemAnswer } from '../../main/common/entitlements.js';
import { createMemoryLogger } from '../../main/runtime/log/index.js';
import { tempDir } from '../helpers/tmp.js';

// Real HTTP on 127.0.0.1 against a real runtime with a real SQLite file.
let host: RunningHost;
let staff: Record<string, string>;
let operator: Record<string, string>;

beforeAll(async () => {
  host = await startHost({ dataDir: tempDir('tessera-redeem-', 'file'), host: '127.0.0.1', port: 0, logger: createMemoryLogger(), shell: 'headless', env: {} });
  staff = { authorization: `Bearer ${host.credentials.roleToken('staff')}`, 'content-type': 'application/json' };
  operator = { authorization: `Bearer ${host.token}`, 'content-type': 'application/json' };
});
afterAll(async () => {
  await host?.close();
});

const post = async (path: string, body: unknown, headers = staff) => {
  const res = await fetch(host.origin + path, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as RedeemAnswer & Record<string, unknown> };
};
const issue = (over: Record<string, unknown> = {}) => host.runtime.entitlements.issue({
  product_runtime_session_id: 'prs_http', product_cid: `b3:${'ef'.repeat(32)}`, product_ref: 'city.museum-ticket@1.0.0', kind: 'single_use',
  valid_from: Date.now() - 1000, valid_until: Date.now() + 3600_000, venues: ['museum-art'], ...over,
});

describe('redeem over HTTP', () => {
  it('lets exactly one of two staff screens redeem a single-use ticket at the same instant; the other hears ALREADY_USED with time and place', async () => {
    for (let trial = 0; trial < 5; trial++) {
      const { code } = issue();
      const answers = await Promise.all([
        post('/api/redeem', { code, venue: 'museum-art', screen: 'gate 1' }),
        post('/api/redeem', { code, venue: 'museum-art', screen: 'gate 2' }),
      ]);
      expect(answers.map((a) => a.status)).toEqual([200, 200]);
      const verdicts = answers.map((a) => a.body.verdict).sort();
      expect(verdicts).toEqual(['ALREADY_USED', 'REDEEMED']);
      const winner = answers.find((a) => a.body.verdict === 'REDEEMED')!.body;
      const loser = answers.find((a) => a.body.verdict === 'ALREADY_USED')!.body;
      expect(loser.previous).toEqual({ at: winner.redemption!.at, venue: 'museum-art', screen: winner.redemption!.screen });
      expect(loser.message).toMatch(/^Already used at museum-art at \d\d:\d\d UTC\.$/);
    }
  });

  it('checks without writing, undoes within the window, and lists history and entitlements', async () => {
    const { code, serial } = issue();
    expect((await post('/api/redeem/check', { code, venue: 'museum-art' })).body.verdict).toBe('VALID');
    expect((await post('/api/redeem/check', { code, venue: 'museum-art' })).body.verdict).toBe('VALID');
    expect((await post('/api/redeem/check', { code, venue: 'elsewhere' })).body.verdict).toBe('NOT_VALID_HERE');
    expect((await post('/api/redeem/check', { code: code.slice(0, -3), venue: 'museum-art' })).body.verdict).toBe('DAMAGED_CODE');
    const r = await post('/api/redeem', { code, venue: 'museum-art' });
    const undo = await post(`/api/redemptions/${r.body.redemption!.id}/undo`, { reason: 'mis-tap' });
    expect(undo).toMatchObject({ status: 200, body: { verdict: 'UNDONE' } });
    expect(await post(`/api/redemptions/${r.body.redemption!.id}/undo`, {})).toMatchObject({ status: 409, body: { error: { code: 'ALREADY_UNDONE' } } });
    expect(await post('/api/redemptions/rdm_missing/undo', {})).toMatchObject({ status: 404, body: { error: { code: 'REDEMPTION_NOT_FOUND' } } });
    const history = await (await fetch(`${host.origin}/api/redemptions?q=${serial.slice(0, 10)}`, { headers: staff })).json() as { redemptions: Array<{ serial: string; undone_at?: string }> };
    expect(history.redemptions).toHaveLength(1);
    expect(history.redemptions[0]!.undone_at).toEqual(expect.any(String));
    const mine = await (await fetch(`${host.origin}/api/entitlements?session=prs_http`, { headers: staff })).json() as { entitlements: Array<{ serial: string }> };
    expect(mine.entitlements.map((e) => e.serial)).toContain(serial);
  });

  it('pauses issuing for the operator only, and revokes a serial', async () => {
    expect((await post('/api/issuing', { paused: true, reason: 'drill' })).status).toBe(403);
    expect(await post('/api/issuing', { paused: true, reason: 'drill' }, operator)).toMatchObject({ status: 200, body: { paused: true, reason: 'drill' } });
    expect(() => issue()).toThrow(expect.objectContaining({ code: 'ISSUING_PAUSED' }));
    expect((await post('/api/issuing', { paused: false }, operator)).body).toMatchObject({ paused: false });
    const { code, serial } = issue();
    expect((await post(`/api/entitlements/${serial}/revoke`, { reason: 'refund' }, operator)).status).toBe(200);
    expect((await post('/api/redeem', { code, venue: 'museum-art' })).body).toMatchObject({ verdict: 'REVOKED' });
  });

  it('redeems, lists and pauses from the CLI against the running runtime', async () => {
    const out: string[] = [];
    const io = (token: string) => ({ stdout: (t: string) => void out.push(t), stderr: (t: string) => void out.push(t), env: { TESSERA_TOKEN: token } });
    const cli = (args: string[], token = host.credentials.roleToken('staff')) => runCli([...args, '--url', host.origin], io(token));
    const { code, serial } = issue({ product_runtime_session_id: 'prs_cli' });
    expect(await cli(['redeem', code, '--venue', 'museum-art', '--check'])).toBe(0);
    expect(await cli(['redeem', code, '--venue', 'museum-art'])).toBe(0);
    expect(out.join('')).toMatch(/REDEEMED: Redeemed\./);
    expect(await cli(['redeem', code, '--venue', 'museum-art'])).toBe(1);
    expect(out.join('')).toMatch(/ALREADY USED: Already used at museum-art at \d\d:\d\d UTC\./);
    expect(await cli(['entitlements', 'list', '--session', 'prs_cli'])).toBe(0);
    expect(out.join('')).toContain(`${serial}  used`);
    expect(await cli(['issuing', 'pause', '--reason', 'drill'], host.token)).toBe(0);
    expect(host.runtime.entitlements.issuing()).toMatchObject({ paused: true, reason: 'drill' });
    expect(await cli(['issuing', 'resume'], host.token)).toBe(0);
    expect(host.runtime.entitlements.issuing().paused).toBe(false);
  });

  it('routes the redeem_entitlement scenario (and so the voice intent "redeem code …") to the module', async () => {
    const { code, serial } = issue({ product_runtime_session_id: 'prs_voice', venues: [] });
    const finished = async (runId: string) => {
      for (;;) {
        const s = host.runtime.scenarios.status(runId);
        if (['completed', 'failed', 'cancelled'].includes(s.state)) return s;
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const run = await finished(host.runtime.scenarios.run('redeem_entitlement', { entitlement_id: code, venue: 'museum-art' }));
    expect(run.state).toBe('completed');
    expect(host.runtime.entitlements.history({ q: serial })).toMatchObject([{ serial, venue: 'museum-art', screen: expect.stringMatching(/^scenario:/) }]);
    // The same code again: the step fails with the verdict's sentence, nothing is redeemed twice.
    const again = await finished(host.runtime.scenarios.run('redeem_entitlement', { entitlement_id: code, venue: 'museum-art' }));
    expect(again.state).toBe('failed');
    expect(JSON.stringify(again.error)).toContain('Already used at museum-art');
    expect(host.runtime.entitlements.history({ q: serial })).toHaveLength(1);
    // The intent that starts it.
    expect(host.runtime.intents.recognizer.recognize(`redeem code ${code.slice(4, 12)}`)?.intent).toBe('entitlement.redeem');
  }, 60_000);
});
