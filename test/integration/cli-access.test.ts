import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCredentials } from '../../main/host/credentials.js';
import { BIN, cleanEnv, requireBuild } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const tessera = (args: string[], input = '') => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: cleanEnv(), input, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe('tessera pin and tessera token', () => {
  requireBuild();

  it('sets the operator PIN from standard input, refuses a weak one, and clears it', async () => {
    const data = tempDir();
    const weak = tessera(['pin', 'set', '--data', data], '1234\n');
    expect(weak.code).toBe(2);
    expect(weak.stderr).toContain('error CONFIG_INVALID: The PIN must not be a run of digits like 1234.');
    expect(existsSync(join(data, 'operator-pin'))).toBe(false);
    const set = tessera(['pin', 'set', '--data', data], '2580\n');
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('Operator PIN set');
    expect(readFileSync(join(data, 'operator-pin'), 'utf8')).not.toContain('2580');
    const credentials = createCredentials({ dataDir: data, deviceToken: 'unused-device-token-0123456789', tenantForToken: () => undefined });
    await expect(credentials.unlock('2580')).resolves.toMatchObject({ roles: ['traveller', 'staff', 'author', 'operator'] });
    expect(tessera(['pin', 'clear', '--data', data]).code).toBe(0);
    expect(credentials.pinSet()).toBe(false);
  });

  it('prints a role token that the runtime accepts for that role only, with its UI link', () => {
    const data = tempDir();
    const staff = tessera(['token', '--role', 'staff', '--data', data, '--port', '7777']);
    expect(staff.code, staff.stderr).toBe(0);
    const token = staff.stdout.trim();
    const device = readFileSync(join(data, 'api-token'), 'utf8').trim();
    const credentials = createCredentials({ dataDir: data, deviceToken: device, tenantForToken: () => undefined });
    expect(credentials.resolve(token)).toMatchObject({ kind: 'role', roles: ['staff'] });
    expect(staff.stderr).toContain(`UI link: http://127.0.0.1:7777/#token=${token}`);
    expect(tessera(['token', '--data', data]).stdout.trim()).toBe(device);
    const bad = tessera(['token', '--role', 'boss', '--data', data]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--role must be one of traveller, staff, author, operator');
  });
});
