/**
 * The `{place}` slot of the journey intents (issue 15 point 5): the places of the journeys in progress, with their
 * names and aliases per language, set into every intent rule set that declares `place: {dynamic: true}` — the
 * recognizer sees them at once — and compiled into the speech grammar (pocketsphinx hears only what its grammar
 * holds), whenever the journeys module says they changed (`Journeys.places()` / `onPlacesChange`).
 *
 * A rule set gets the names in its own language; a place with none in that language gets its English names (the
 * document's `name.en` is required), so a Russian or Ukrainian speaker can still say a name they read on the
 * screen. The grammar is recompiled only when the values changed, one compilation at a time; it is built from the
 * English rules only (pocketsphinx has only an English model here: Russian and Ukrainian are understood as text).
 */
import type { JourneyLanguage } from '../../common/journeys.js';
import type { DynamicListValue, RuleSet } from '../intents/index.js';
import { setListValues } from '../intents/index.js';
import type { Disposable } from '../lifecycle/index.js';
import type { Logger } from '../log/index.js';

/** The list the journey intents' place slot reads (resources/intents/*.yaml `lists.place`). */
export const PLACE_LIST = 'place';

/** Where the places come from: the journeys module (`Pick<Journeys, 'places' | 'onPlacesChange'>`). */
export interface PlaceSource {
  places(): Array<{ id: string; names: Partial<Record<JourneyLanguage, string[]>> }>;
  onPlacesChange(listener: () => void): Disposable;
}

export interface PlaceListBinding extends Disposable {
  /** Set the current places now (the binding does it on every change); resolves once the grammar matches them. */
  update(): Promise<void>;
}

/**
 * Keeps the `{place}` list of `ruleSets` equal to `source.places()`, and the speech grammar compiled from them
 * (`refreshGrammar`: the I/O router's). Sets the current places at once. Dispose to stop following changes.
 */
export function bindPlaceList(options: { source: PlaceSource; ruleSets: readonly RuleSet[]; refreshGrammar?: () => Promise<unknown>; logger?: Logger }): PlaceListBinding {
  const { source, logger } = options;
  const sets = options.ruleSets.filter((s) => s.dynamicLists.includes(PLACE_LIST));
  let last = '';
  let grammar: Promise<void> = Promise.resolve();

  const update = (): Promise<void> => {
    let places: ReturnType<PlaceSource['places']>;
    try {
      places = source.places();
    } catch (err) {
      logger?.warn('the journeys\' places could not be read for the {place} slot', { error: err });
      return grammar;
    }
    const values = new Map<string, DynamicListValue[]>();
    for (const set of sets) {
      const lang = set.language as JourneyLanguage;
      values.set(set.file, places.map((p) => ({ in: [...(p.names[lang] ?? p.names.en ?? [])], out: p.id })));
    }
    const key = JSON.stringify([...values]);
    if (key === last) return grammar;
    last = key;
    for (const set of sets) setListValues(set, PLACE_LIST, values.get(set.file)!);
    logger?.info('the {place} slot follows the journeys in progress', { places: places.map((p) => p.id) });
    const refresh = options.refreshGrammar;
    if (refresh) {
      grammar = grammar.then(() => refresh()).then(
        () => undefined,
        (err: unknown) => logger?.warn('the speech grammar could not be recompiled for the new places; speech keeps the previous ones', { error: err }),
      );
    }
    return grammar;
  };

  const subscription = source.onPlacesChange(() => void update());
  void update();
  return {
    update,
    async dispose() {
      await subscription.dispose();
      await grammar;
    },
  };
}
