/**
 * Plain directions for a planned route, in the journey languages (en, ru, uk). Names come from the package
 * (streets and stops per language, `en` when a translation is missing). Russian and Ukrainian street names are
 * listed in their nominative form in brackets, so no declension is needed; counts take the language's plural forms.
 */
import type { JourneyLanguage } from '../../common/journeys.js';
import type { LocalName } from './transit.js';

export type Named = LocalName;

export const pick = (name: Named, language: JourneyLanguage): string => name[language] ?? name.en;

const plurals = new Map<string, Intl.PluralRules>();
function plural(language: JourneyLanguage, n: number, forms: { one: string; few: string; many: string }): string {
  let rules = plurals.get(language);
  if (!rules) {
    rules = new Intl.PluralRules(language);
    plurals.set(language, rules);
  }
  const cat = rules.select(n);
  return cat === 'one' ? forms.one : cat === 'few' ? forms.few : forms.many;
}

const minutes = (language: JourneyLanguage, n: number): string =>
  language === 'en' ? `${n} ${n === 1 ? 'minute' : 'minutes'}` : language === 'ru' ? `${n} ${plural('ru', n, { one: 'минуту', few: 'минуты', many: 'минут' })}` : `${n} ${plural('uk', n, { one: 'хвилину', few: 'хвилини', many: 'хвилин' })}`;

const stopsCount = (language: JourneyLanguage, n: number): string =>
  language === 'en' ? `${n} ${n === 1 ? 'stop' : 'stops'}` : language === 'ru' ? `${n} ${plural('ru', n, { one: 'остановку', few: 'остановки', many: 'остановок' })}` : `${n} ${plural('uk', n, { one: 'зупинку', few: 'зупинки', many: 'зупинок' })}`;

function list(language: JourneyLanguage, items: string[]): string {
  if (items.length <= 1) return items[0] ?? '';
  const and = language === 'en' ? 'and' : language === 'ru' ? 'и' : 'і';
  return `${items.slice(0, -1).join(', ')} ${and} ${items[items.length - 1]}`;
}

/** Where a walk ends: a named place, a stop, or the traveller's destination when it has no name. */
export type WalkTarget = { kind: 'place'; name: string | null } | { kind: 'stop'; name: string };

function target(language: JourneyLanguage, to: WalkTarget): string {
  if (to.kind === 'stop') return language === 'en' ? `to the ${to.name} stop` : language === 'ru' ? `до остановки «${to.name}»` : `до зупинки «${to.name}»`;
  if (to.name === null) return language === 'en' ? 'to your destination' : language === 'ru' ? 'до места назначения' : 'до місця призначення';
  return language === 'en' ? `to ${to.name}` : `до «${to.name}»`;
}

export function walkSentence(language: JourneyLanguage, mins: number, streets: string[], to: WalkTarget): string {
  const m = minutes(language, Math.max(1, mins));
  if (language === 'en') return `Walk ${m}${streets.length > 0 ? ` along ${list('en', streets)}` : ''} ${target('en', to)}.`;
  const head = language === 'ru' ? 'Пешком' : 'Пішки';
  return `${head} ${m} ${target(language, to)}${streets.length > 0 ? ` (${streets.join(', ')})` : ''}.`;
}

/** `Tram 7`, `Трамвай 7`… from the GTFS route_type. */
export function lineName(language: JourneyLanguage, type: number, short: string): string {
  const kinds: Record<number, [string, string, string]> = { 0: ['Tram', 'Трамвай', 'Трамвай'], 1: ['Metro', 'Метро', 'Метро'], 2: ['Train', 'Поезд', 'Поїзд'], 3: ['Bus', 'Автобус', 'Автобус'], 4: ['Ferry', 'Паром', 'Пором'], 11: ['Trolleybus', 'Троллейбус', 'Тролейбус'] };
  const k = kinds[type] ?? ['Line', 'Маршрут', 'Маршрут'];
  const word = language === 'en' ? k[0] : language === 'ru' ? k[1] : k[2];
  return short ? `${word} ${short}` : word;
}

export function rideSentence(language: JourneyLanguage, r: { line: string; headsign: string; at: string; board: string; alight: string; stops: number }): string {
  const n = stopsCount(language, r.stops);
  if (language === 'en') return `Take ${r.line} towards ${r.headsign} at ${r.at} from ${r.board}, ${n}, to ${r.alight}.`;
  if (language === 'ru') return `${r.line} в сторону «${r.headsign}»: в ${r.at} от остановки «${r.board}», ${n} до «${r.alight}».`;
  return `${r.line} у напрямку «${r.headsign}»: о ${r.at} від зупинки «${r.board}», ${n} до «${r.alight}».`;
}

export function arriveSentence(language: JourneyLanguage, at: string): string {
  return language === 'en' ? `You arrive at ${at}.` : language === 'ru' ? `Прибытие в ${at}.` : `Прибуття о ${at}.`;
}

/** When the destination is a few steps away (under {@link HERE_M} metres). */
export const HERE_M = 25;
export function hereSentence(language: JourneyLanguage, name: string | null): string {
  if (language === 'en') return name === null ? 'You are there.' : `You are at ${name}.`;
  if (language === 'ru') return name === null ? 'Вы на месте.' : `Вы на месте: «${name}».`;
  return name === null ? 'Ви на місці.' : `Ви на місці: «${name}».`;
}
