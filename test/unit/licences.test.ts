/**
 * No GPL in the app (issue 15 point 3: "check licences of any routing library"): every package the app ships —
 * the transitive closure of package.json `dependencies` as installed in node_modules — has a licence, and none is
 * GPL, LGPL or AGPL unless the package also offers a licence without copyleft (an `OR` expression).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url).pathname;

interface Manifest {
  name: string;
  version: string;
  license?: string | { type: string };
  licenses?: Array<{ type: string }>;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

/** Node's lookup: the nearest node_modules/<name> walking up from `from`. */
function locate(name: string, from: string): string | null {
  for (let dir = from; ; dir = dirname(dir)) {
    const file = join(dir, 'node_modules', name, 'package.json');
    if (existsSync(file)) return file;
    if (dirname(dir) === dir) return null;
  }
}

function shipped(): Map<string, Manifest> {
  const seen = new Map<string, Manifest>();
  const visit = (name: string, from: string, optional: boolean) => {
    const file = locate(name, from);
    if (!file) {
      if (!optional) throw new Error(`${name} (needed from ${from}) is not installed`);
      return;
    }
    if (seen.has(file)) return;
    const m = JSON.parse(readFileSync(file, 'utf8')) as Manifest;
    seen.set(file, m);
    for (const d of Object.keys(m.dependencies ?? {})) visit(d, dirname(file), false);
    for (const d of Object.keys(m.optionalDependencies ?? {})) visit(d, dirname(file), true);
  };
  const app = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Manifest;
  for (const d of Object.keys(app.dependencies ?? {})) visit(d, ROOT, false);
  return seen;
}

const licenceOf = (m: Manifest): string => (typeof m.license === 'string' ? m.license : m.license?.type ?? m.licenses?.map((l) => l.type).join(' OR ') ?? '');

/** Copyleft unless one `OR` alternative is free of it. */
export function isCopyleftOnly(expression: string): boolean {
  const alternatives = expression.replace(/[()]/g, ' ').split(/\s+OR\s+/i);
  return alternatives.every((a) => /\b(A|L)?GPL/i.test(a));
}

describe('licences of what the app ships', () => {
  it('tells copyleft-only expressions from ones with a permissive alternative', () => {
    expect(isCopyleftOnly('GPL-3.0-only')).toBe(true);
    expect(isCopyleftOnly('AGPL-3.0-or-later')).toBe(true);
    expect(isCopyleftOnly('(LGPL-2.1 OR MIT)')).toBe(false);
    expect(isCopyleftOnly('MIT')).toBe(false);
  });

  it('finds a licence on every shipped package and no GPL, LGPL or AGPL among them', () => {
    const packages = shipped();
    expect(packages.size).toBeGreaterThan(50);
    const problems = [...packages.values()].map((m) => ({ pkg: `${m.name}@${m.version}`, licence: licenceOf(m) })).filter((p) => p.licence === '' || isCopyleftOnly(p.licence));
    expect(problems).toEqual([]);
  });
});
