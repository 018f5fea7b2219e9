/** Where the app's own files are, from source (tests, tsx) or from the build (out/main/…), alike. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findAppRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'tessera') return dir;
      } catch {
        // not ours; keep climbing
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('Cannot find the Tessera app folder (its package.json).');
    dir = parent;
  }
}

export const APP_ROOT = findAppRoot();
/** The built renderer. */
export const RENDERER_DIR = join(APP_ROOT, 'out', 'renderer');
/** Trust roots shipped with the app: the first-party plugins' publisher key. */
export const BUILTIN_TRUST_DIR = join(APP_ROOT, 'resources', 'trust');
/** First-party plugins, built and signed by `npm run build`. */
export const BUILTIN_PLUGINS_DIR = join(APP_ROOT, 'out', 'plugins');
/** Scenarios shipped with the app. */
export const BUILTIN_SCENARIOS_DIR = join(APP_ROOT, 'resources', 'scenarios');
/** Product manifests shipped with the app (the API Receipt Gateway preset). */
export const BUILTIN_PRODUCTS_DIR = join(APP_ROOT, 'resources', 'products');
/** Signed ProductDefs shipped with the app (the sample city's catalogue), signed by `npm run build`. */
export const BUILTIN_CATALOGUE_DIR = join(APP_ROOT, 'resources', 'catalogue');
/** Signed journey documents shipped with the app (the sample city's guided day), signed by `npm run build`. */
export const BUILTIN_JOURNEYS_DIR = join(APP_ROOT, 'resources', 'journeys');
/** City data packages shipped with the app (the sample city, Lviv), signed by `npm run build`; one folder per package. */
export const BUILTIN_CITY_DIR = join(APP_ROOT, 'resources', 'city');
/** Intent rules shipped with the app, one file per language. */
export const BUILTIN_INTENT_FILES = ['en', 'ru', 'uk'].map((l) => join(APP_ROOT, 'resources', 'intents', `${l}.yaml`));
