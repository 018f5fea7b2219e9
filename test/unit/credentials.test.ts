import { describe, expect, it } from 'vitest';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCredentials, pinProblem, setOperatorPin, UNLOCK_TTL_MS } from '../../main/host/credentials.js';
import { canSeeArea, canWatch } from '../../main/common/roles.js';
import { tempDir } from '../helpers/tmp.js';

const DEVICE = 'device-token-0123456789abcdefghijklmnop';

function setup() {
  const dataDir = tempDir('tessera-credentials-');
  let clock = 1_000_000;
  const credentials = createCredentials({ dataDir, deviceToken: DEVICE, tenantForToken: (t) => (t === 'tenant-token-0123456789' ? { id: 'acme' } : undefined), now: () => clock });
  return { dataDir, credentials, advance: (ms: number) => (clock += ms) };
}

describe('credentials', () => {
  it('gives the device token every role, each role token one role, and refuses the rest', () => {
    const { credentials } = setup();
    expect(credentials.resolve(DEVICE)).toMatchObject({ kind: 'device', roles: ['traveller', 'staff', 'author', 'operator'] });
    const traveller = credentials.roleToken('traveller');
    expect(credentials.resolve(traveller)).toMatchObject({ kind: 'role', roles: ['traveller'] });
    expect(new Set(['traveller', 'staff', 'author', 'operator'].map((r) => credentials.roleToken(r as 'staff'))).size).toBe(4);
    expect(credentials.resolve('tenant-token-0123456789')).toMatchObject({ kind: 'tenant', roles: [], tenant: { id: 'acme' } });
    for (const bad of [undefined, '', 'x', DEVICE + 'x', traveller.slice(1)]) expect(credentials.resolve(bad)).toBeUndefined();
  });

  it('derives the same role tokens after a restart and other ones for another device token', () => {
    const { dataDir, credentials } = setup();
    const again = createCredentials({ dataDir, deviceToken: DEVICE, tenantForToken: () => undefined });
    expect(again.roleToken('staff')).toBe(credentials.roleToken('staff'));
    const other = createCredentials({ dataDir, deviceToken: DEVICE.replace('0', '1'), tenantForToken: () => undefined });
    expect(other.roleToken('staff')).not.toBe(credentials.roleToken('staff'));
    expect(other.resolve(credentials.roleToken('staff'))).toBeUndefined();
  });

  it('keeps the PIN as a salted scrypt hash, mode 0600, and refuses weak PINs', async () => {
    const { dataDir } = setup();
    for (const weak of ['123', '1111', '1234', '9876', '12a4', '1234567890123']) expect(pinProblem(weak), weak).toBeDefined();
    expect(pinProblem('2580')).toBeUndefined();
    await expect(setOperatorPin(dataDir, '1234')).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await setOperatorPin(dataDir, '2580');
    const text = readFileSync(join(dataDir, 'operator-pin'), 'utf8');
    expect(text).not.toContain('2580');
    expect(JSON.parse(text)).toMatchObject({ v: 1, kdf: 'scrypt' });
    expect(statSync(join(dataDir, 'operator-pin')).mode & 0o777).toBe(0o600);
  });

  it('opens an operator session that holds every role and ends when it expires or is locked', async () => {
    const { dataDir, credentials, advance } = setup();
    await setOperatorPin(dataDir, '2580');
    const session = await credentials.unlock('2580');
    expect(credentials.resolve(session.token)).toMatchObject({ kind: 'unlocked', roles: ['traveller', 'staff', 'author', 'operator'] });
    advance(UNLOCK_TTL_MS - 1);
    expect(credentials.resolve(session.token)).toBeDefined();
    advance(1);
    expect(credentials.resolve(session.token)).toBeUndefined();
    const second = await credentials.unlock('2580', 60_000);
    expect(credentials.lock(second.token)).toBe(true);
    expect(credentials.resolve(second.token)).toBeUndefined();
    expect(credentials.lock(DEVICE)).toBe(false);
  });

  it('locks the unlock out after 5 wrong PINs, for 30 s, doubling after each further 5, even for the right PIN', async () => {
    const { dataDir, credentials, advance } = setup();
    await setOperatorPin(dataDir, '2580');
    for (let left = 4; left >= 0; left--) {
      await expect(credentials.unlock('0000')).rejects.toMatchObject({ code: 'PIN_INVALID', details: expect.objectContaining({ attempts_left: left }) });
    }
    await expect(credentials.unlock('2580')).rejects.toMatchObject({ code: 'PIN_LOCKED', retryable: true, details: { retry_after_seconds: 30 } });
    advance(30_000);
    for (let i = 0; i < 5; i++) await expect(credentials.unlock('9999')).rejects.toMatchObject({ code: 'PIN_INVALID' });
    await expect(credentials.unlock('2580')).rejects.toMatchObject({ code: 'PIN_LOCKED', details: { retry_after_seconds: 60 } });
    advance(60_000);
    await expect(credentials.unlock('2580')).resolves.toMatchObject({ roles: expect.any(Array) });
  });

  it('says so when no PIN is set, and when the PIN file is not one', async () => {
    const { dataDir, credentials } = setup();
    expect(credentials.pinSet()).toBe(false);
    await expect(credentials.unlock('2580')).rejects.toMatchObject({ code: 'PIN_NOT_SET' });
    writeFileSync(join(dataDir, 'operator-pin'), 'not json');
    await expect(credentials.unlock('2580')).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('tessera pin set') });
  });
});

describe('roles', () => {
  it('lets a role watch only the topics under its prefixes; an operator watches everything', () => {
    expect(canWatch('io.**', ['traveller'])).toBe(true);
    expect(canWatch('io', ['traveller'])).toBe(true);
    expect(canWatch('**', ['traveller'])).toBe(false);
    expect(canWatch('*.voice', ['traveller'])).toBe(false);
    expect(canWatch('iox.**', ['traveller'])).toBe(false);
    expect(canWatch('scenario.**', ['traveller', 'staff'])).toBe(false);
    expect(canWatch('**', ['operator'])).toBe(true);
  });

  it('shows each area to its roles only', () => {
    expect(canSeeArea('ops', ['traveller'])).toBe(false);
    expect(canSeeArea('journey', ['traveller'])).toBe(true);
    expect(canSeeArea('verify', ['staff'])).toBe(true);
    expect(canSeeArea('studio', ['staff'])).toBe(false);
  });
});
