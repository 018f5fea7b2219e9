/**
 * The Journey Guide screen (issue 15 point 4), the part without a screen: its words in English, Russian and
 * Ukrainian, which journey and which product sessions it shows, which QR code goes with the node ahead, and the
 * projection of the offline map (lat/lon → SVG coordinates). Pure: ./guide.tsx and ./guide-map.tsx render what this
 * decides; test/unit/guide-model.test.ts pins it.
 *
 * Texts that come from the runtime (node titles, place names, the next-step sentence, proposals) are already in the
 * journey's language (the guide passes `language`); the words here are the screen's own.
 */
import type { JourneyLanguage, JourneyNodeView, JourneyView, LatLon, NodeKind, RoutePlan, RoutingStatus } from '../../../main/common/journeys.js';
import type { CatalogueProduct, EntitlementView, ProductSessionView } from '../../../main/common/products-api.js';

// ---- language ----

/** The guide's language from a BCP 47 tag (the browser's, as the wallet picks it): `ru…` → ru, `uk…` → uk, else en. */
export function guideLanguage(tag: string | undefined): JourneyLanguage {
  const base = (tag ?? '').toLowerCase().split(/[-_]/)[0];
  return base === 'ru' ? 'ru' : base === 'uk' ? 'uk' : 'en';
}

/** The `Intl` locale of a guide language (British English: "12 Nov 2026", a 24-hour clock). */
const LOCALE: Record<JourneyLanguage, string> = { en: 'en-GB', ru: 'ru-RU', uk: 'uk-UA' };

/** "1 day", "2 дня", "5 днів": a count with its noun in the right plural form. */
function counted(lang: JourneyLanguage, n: number, forms: Partial<Record<Intl.LDMLPluralRule, string>> & { other: string }): string {
  const rule = new Intl.PluralRules(LOCALE[lang]).select(n);
  return `${n} ${forms[rule] ?? forms.other}`;
}

type DegradedReason = NonNullable<RoutingStatus['degraded']>['reason'] | 'no_path';

/** The screen's own words. */
export interface GuideTexts {
  tab: string;
  loading: string;
  heading: string;
  noPass: string;
  start: string;
  starting: string;
  startFor: (product: string) => string;
  itinerary: string;
  /** The itinerary's rows are buttons: "show the way to …". */
  wayTo: (place: string) => string;
  wayHeading: (place: string) => string;
  noWay: string;
  backToNext: string;
  next: string;
  done: string;
  skip: string;
  working: string;
  finished: string;
  abandoned: string;
  state: Record<'current' | 'done' | 'skipped' | 'pending', string>;
  kind: Record<NodeKind, string>;
  minutes: (n: number) => string;
  stay: (n: number) => string;
  hours: (open: string | null, close: string | null) => string | null;
  closedToday: string;
  showCode: string;
  needsPass: string;
  conflict: string;
  degraded: (reason: string) => string;
  degradedReason: Record<DegradedReason, string>;
  packageAge: (date: string, days: number) => string;
  noPackage: string;
  proposals: string;
  accept: string;
  notNow: string;
  map: string;
  mapNone: string;
  tram: string;
  walk: string;
  stops: (n: number) => string;
  meters: (m: number) => string;
  problems: Record<'NOT_READY' | 'JOURNEY_ENDED' | 'SESSION_NOT_ACTIVE' | 'JOURNEY_NOT_FOUND' | 'PROPOSAL_NOT_FOUND' | 'JOURNEY_NODE_UNKNOWN' | 'FORBIDDEN', string>;
  /** The chat with the guide agent (issue 17 point 8; ./guide-agent.tsx). */
  agent: GuideAgentTexts;
}

/** The guide agent's chat panel: its own words, and the agent errors a traveller may meet, said plainly. */
export interface GuideAgentTexts {
  heading: string;
  label: string;
  placeholder: string;
  send: string;
  thinking: string;
  hint: string;
  /** The agent has no model, or its model is down: the rule-based guide answers (seed 000 §7.3). */
  ruleBased: string;
  suggested: string;
  accepted: string;
  rejected: string;
  failed: (why: string) => string;
  turnFailed: string;
  paused: string;
  problems: Record<'AGENT_SESSION_BUSY' | 'AGENT_RATE_LIMITED' | 'AGENT_DISABLED' | 'AGENT_SESSION_PAUSED' | 'AGENT_SESSION_CLOSED' | 'AGENT_PROPOSAL_DECIDED', string>;
}

const km = (lang: JourneyLanguage, m: number, unitM: string, unitKm: string) =>
  m < 1000 ? `${Math.round(m / 10) * 10} ${unitM}` : `${new Intl.NumberFormat(LOCALE[lang], { maximumFractionDigits: 1, minimumFractionDigits: 1 }).format(m / 1000)} ${unitKm}`;

const EN: GuideTexts = {
  tab: 'Guide',
  loading: 'Loading your journey…',
  heading: "Today's journey",
  noPass: 'Buy a pass that comes with a journey (under “Passes & tickets”) and the guide leads you through the day.',
  start: "Start today's journey",
  starting: 'Starting…',
  startFor: (p) => `With your ${p}`,
  itinerary: 'Your day',
  wayTo: (p) => `Show the way to ${p}`,
  wayHeading: (p) => `The way to ${p}`,
  noWay: 'No way was found on the map; here is what the journey itself says.',
  backToNext: 'Back to the next step',
  next: 'Next',
  done: "I'm here / Done",
  skip: 'Skip',
  working: 'One moment…',
  finished: 'Journey complete — thank you for travelling with us!',
  abandoned: 'This journey was ended.',
  state: { current: 'Now', done: 'Done', skipped: 'Skipped', pending: '' },
  kind: { visit: 'Visit', meal: 'Meal', transit: 'Transfer', checkpoint: 'Meeting point', free_time: 'Free time' },
  minutes: (n) => counted('en', n, { one: 'minute', other: 'minutes' }),
  stay: (n) => `about ${n} min`,
  closedToday: 'Closed today',
  hours: (open, close) => (open && close ? `Open today ${open}–${close}` : open ? `Opens today at ${open}` : close ? `Open today until ${close}` : null),
  showCode: 'Show this code at the entrance.',
  needsPass: 'This place needs a pass you do not hold; you can buy one under “Passes & tickets”.',
  conflict: 'Another screen changed this journey just now; here is how it stands.',
  degraded: (reason) => `The city map is not available (${reason}): directions come from the journey's own notes.`,
  degradedReason: { missing: 'no city data on this kiosk', stale: 'the city data is out of date', invalid: 'the city data failed its check', no_path: 'no way found on the map' },
  packageAge: (date, days) => `City data from ${date}, ${days === 0 ? 'less than a day old' : `${counted('en', days, { one: 'day', other: 'days' })} old`}`,
  noPackage: 'No city data on this kiosk',
  proposals: 'The guide suggests',
  accept: 'Accept',
  notNow: 'Not now',
  map: 'Map of your journey',
  mapNone: 'No map to show.',
  tram: 'Tram',
  walk: 'Walk',
  stops: (n) => counted('en', n, { one: 'stop', other: 'stops' }),
  meters: (m) => km('en', m, 'm', 'km'),
  problems: {
    NOT_READY: 'The kiosk cannot reach its service at the moment. Please try again in a moment.',
    JOURNEY_ENDED: 'This journey has already ended.',
    SESSION_NOT_ACTIVE: 'Your pass is not active, so the journey cannot start. Please ask staff.',
    JOURNEY_NOT_FOUND: 'This journey is no longer on this kiosk.',
    PROPOSAL_NOT_FOUND: 'This suggestion is no longer open.',
    JOURNEY_NODE_UNKNOWN: 'That stop is not part of this journey any more.',
    FORBIDDEN: 'This screen may not do that; please ask staff.',
  },
  agent: {
    heading: 'Ask the guide',
    label: 'Your question for the guide',
    placeholder: 'e.g. What should I do next?',
    send: 'Ask',
    thinking: 'The guide is answering…',
    hint: 'Ask about your day: what is next, how to get there, when a place opens. The guide can suggest changes; nothing changes until you accept.',
    ruleBased: 'The guide is working without its AI model right now, so its answers come from simple built-in rules.',
    suggested: 'The guide suggests a change below. Nothing happens unless you accept it.',
    accepted: 'Done: your journey was changed.',
    rejected: 'Fine: nothing was changed.',
    failed: (why) => `That change could not be made: ${why}`,
    turnFailed: 'The guide could not answer that just now. Please ask again.',
    paused: 'The guide has used up its time for now. Please ask staff for help.',
    problems: {
      AGENT_SESSION_BUSY: 'The guide is still answering your last question.',
      AGENT_RATE_LIMITED: 'That was a lot of questions at once. Please wait a moment and ask again.',
      AGENT_DISABLED: 'The guide cannot chat right now. The next step above still works.',
      AGENT_SESSION_PAUSED: 'The guide has used up its time for now. Please ask staff for help.',
      AGENT_SESSION_CLOSED: 'This conversation has ended. Ask again to start a new one.',
      AGENT_PROPOSAL_DECIDED: 'This suggestion was already decided.',
    },
  },
};

const RU: GuideTexts = {
  tab: 'Гид',
  loading: 'Загружаем ваше путешествие…',
  heading: 'Путешествие на сегодня',
  noPass: 'Купите карту с маршрутом (во вкладке «Passes & tickets»), и гид проведёт вас через весь день.',
  start: 'Начать путешествие на сегодня',
  starting: 'Начинаем…',
  startFor: (p) => `С вашей картой: ${p}`,
  itinerary: 'Ваш день',
  wayTo: (p) => `Показать дорогу: ${p}`,
  wayHeading: (p) => `Дорога: ${p}`,
  noWay: 'На карте путь не найден; вот что говорят заметки путешествия.',
  backToNext: 'Назад к следующему шагу',
  next: 'Дальше',
  done: 'Я здесь / Готово',
  skip: 'Пропустить',
  working: 'Минутку…',
  finished: 'Путешествие завершено — спасибо, что были с нами!',
  abandoned: 'Это путешествие прервано.',
  state: { current: 'Сейчас', done: 'Готово', skipped: 'Пропущено', pending: '' },
  kind: { visit: 'Посещение', meal: 'Еда', transit: 'Переезд', checkpoint: 'Точка сбора', free_time: 'Свободное время' },
  minutes: (n) => counted('ru', n, { one: 'минута', few: 'минуты', many: 'минут', other: 'минуты' }),
  stay: (n) => `около ${n} мин`,
  closedToday: 'Сегодня закрыто',
  hours: (open, close) => (open && close ? `Сегодня открыто ${open}–${close}` : open ? `Сегодня открывается в ${open}` : close ? `Сегодня открыто до ${close}` : null),
  showCode: 'Покажите этот код на входе.',
  needsPass: 'Сюда нужна карта, которой у вас нет; её можно купить во вкладке «Passes & tickets».',
  conflict: 'Другой экран только что изменил это путешествие; вот как оно выглядит сейчас.',
  degraded: (reason) => `Карта города недоступна (${reason}): маршруты берутся из заметок самого путешествия.`,
  degradedReason: { missing: 'на этом киоске нет данных города', stale: 'данные города устарели', invalid: 'данные города не прошли проверку', no_path: 'на карте не найден путь' },
  packageAge: (date, days) => `Данные города от ${date}, ${days === 0 ? 'меньше суток' : counted('ru', days, { one: 'день', few: 'дня', many: 'дней', other: 'дня' })}`,
  noPackage: 'На этом киоске нет данных города',
  proposals: 'Гид предлагает',
  accept: 'Принять',
  notNow: 'Не сейчас',
  map: 'Карта вашего путешествия',
  mapNone: 'Карты нет.',
  tram: 'Трамвай',
  walk: 'Пешком',
  stops: (n) => counted('ru', n, { one: 'остановка', few: 'остановки', many: 'остановок', other: 'остановки' }),
  meters: (m) => km('ru', m, 'м', 'км'),
  problems: {
    NOT_READY: 'Киоск сейчас не может связаться со своей службой. Попробуйте ещё раз через минуту.',
    JOURNEY_ENDED: 'Это путешествие уже закончилось.',
    SESSION_NOT_ACTIVE: 'Ваша карта не активна, поэтому путешествие не может начаться. Обратитесь к сотрудникам.',
    JOURNEY_NOT_FOUND: 'Этого путешествия больше нет на киоске.',
    PROPOSAL_NOT_FOUND: 'Это предложение уже неактуально.',
    JOURNEY_NODE_UNKNOWN: 'Этой точки больше нет в путешествии.',
    FORBIDDEN: 'Этот экран не может этого сделать; обратитесь к сотрудникам.',
  },
  agent: {
    heading: 'Спросите гида',
    label: 'Ваш вопрос гиду',
    placeholder: 'Например: что мне делать дальше?',
    send: 'Спросить',
    thinking: 'Гид отвечает…',
    hint: 'Спрашивайте о своём дне: что дальше, как добраться, когда открывается место. Гид может предложить изменения; ничего не меняется, пока вы их не примете.',
    ruleBased: 'Сейчас гид работает без своей модели ИИ, поэтому отвечает по простым встроенным правилам.',
    suggested: 'Гид предлагает изменение ниже. Ничего не произойдёт, пока вы его не примете.',
    accepted: 'Готово: путешествие изменено.',
    rejected: 'Хорошо: ничего не изменено.',
    failed: (why) => `Это изменение сделать не удалось: ${why}`,
    turnFailed: 'Гид сейчас не смог ответить. Спросите ещё раз.',
    paused: 'Гид пока исчерпал своё время. Обратитесь к сотрудникам.',
    problems: {
      AGENT_SESSION_BUSY: 'Гид ещё отвечает на ваш прошлый вопрос.',
      AGENT_RATE_LIMITED: 'Слишком много вопросов сразу. Подождите немного и спросите снова.',
      AGENT_DISABLED: 'Гид сейчас не может общаться. Следующий шаг выше по-прежнему работает.',
      AGENT_SESSION_PAUSED: 'Гид пока исчерпал своё время. Обратитесь к сотрудникам.',
      AGENT_SESSION_CLOSED: 'Этот разговор закончен. Спросите снова, чтобы начать новый.',
      AGENT_PROPOSAL_DECIDED: 'Это предложение уже решено.',
    },
  },
};

const UK: GuideTexts = {
  tab: 'Гід',
  loading: 'Завантажуємо вашу подорож…',
  heading: 'Подорож на сьогодні',
  noPass: 'Купіть картку з маршрутом (у вкладці «Passes & tickets»), і гід проведе вас через увесь день.',
  start: 'Почати подорож на сьогодні',
  starting: 'Починаємо…',
  startFor: (p) => `З вашою карткою: ${p}`,
  itinerary: 'Ваш день',
  wayTo: (p) => `Показати дорогу: ${p}`,
  wayHeading: (p) => `Дорога: ${p}`,
  noWay: 'На мапі шлях не знайдено; ось що кажуть нотатки подорожі.',
  backToNext: 'Назад до наступного кроку',
  next: 'Далі',
  done: 'Я тут / Готово',
  skip: 'Пропустити',
  working: 'Хвилинку…',
  finished: 'Подорож завершено — дякуємо, що були з нами!',
  abandoned: 'Цю подорож перервано.',
  state: { current: 'Зараз', done: 'Готово', skipped: 'Пропущено', pending: '' },
  kind: { visit: 'Відвідування', meal: 'Їжа', transit: 'Переїзд', checkpoint: 'Місце збору', free_time: 'Вільний час' },
  minutes: (n) => counted('uk', n, { one: 'хвилина', few: 'хвилини', many: 'хвилин', other: 'хвилини' }),
  stay: (n) => `близько ${n} хв`,
  closedToday: 'Сьогодні зачинено',
  hours: (open, close) => (open && close ? `Сьогодні відчинено ${open}–${close}` : open ? `Сьогодні відчиняється о ${open}` : close ? `Сьогодні відчинено до ${close}` : null),
  showCode: 'Покажіть цей код на вході.',
  needsPass: 'Сюди потрібна картка, якої у вас немає; її можна купити у вкладці «Passes & tickets».',
  conflict: 'Інший екран щойно змінив цю подорож; ось як вона виглядає зараз.',
  degraded: (reason) => `Мапа міста недоступна (${reason}): маршрути беруться з нотаток самої подорожі.`,
  degradedReason: { missing: 'на цьому кіоску немає даних міста', stale: 'дані міста застаріли', invalid: 'дані міста не пройшли перевірку', no_path: 'на мапі не знайдено шляху' },
  packageAge: (date, days) => `Дані міста від ${date}, ${days === 0 ? 'менше доби' : counted('uk', days, { one: 'день', few: 'дні', many: 'днів', other: 'дня' })}`,
  noPackage: 'На цьому кіоску немає даних міста',
  proposals: 'Гід пропонує',
  accept: 'Прийняти',
  notNow: 'Не зараз',
  map: 'Мапа вашої подорожі',
  mapNone: 'Мапи немає.',
  tram: 'Трамвай',
  walk: 'Пішки',
  stops: (n) => counted('uk', n, { one: 'зупинка', few: 'зупинки', many: 'зупинок', other: 'зупинки' }),
  meters: (m) => km('uk', m, 'м', 'км'),
  problems: {
    NOT_READY: 'Кіоск зараз не може зв’язатися зі своєю службою. Спробуйте ще раз за хвилину.',
    JOURNEY_ENDED: 'Ця подорож уже завершилася.',
    SESSION_NOT_ACTIVE: 'Ваша картка не активна, тож подорож не може початися. Зверніться до працівників.',
    JOURNEY_NOT_FOUND: 'Цієї подорожі більше немає на кіоску.',
    PROPOSAL_NOT_FOUND: 'Ця пропозиція вже неактуальна.',
    JOURNEY_NODE_UNKNOWN: 'Цієї точки більше немає в подорожі.',
    FORBIDDEN: 'Цей екран не може цього зробити; зверніться до працівників.',
  },
  agent: {
    heading: 'Запитайте гіда',
    label: 'Ваше запитання гіду',
    placeholder: 'Наприклад: що мені робити далі?',
    send: 'Запитати',
    thinking: 'Гід відповідає…',
    hint: 'Питайте про свій день: що далі, як дістатися, коли відкривається місце. Гід може запропонувати зміни; нічого не змінюється, доки ви їх не приймете.',
    ruleBased: 'Зараз гід працює без своєї моделі ШІ, тож відповідає за простими вбудованими правилами.',
    suggested: 'Гід пропонує зміну нижче. Нічого не станеться, доки ви її не приймете.',
    accepted: 'Готово: подорож змінено.',
    rejected: 'Добре: нічого не змінено.',
    failed: (why) => `Цю зміну зробити не вдалося: ${why}`,
    turnFailed: 'Гід зараз не зміг відповісти. Запитайте ще раз.',
    paused: 'Гід поки вичерпав свій час. Зверніться до працівників.',
    problems: {
      AGENT_SESSION_BUSY: 'Гід ще відповідає на ваше попереднє запитання.',
      AGENT_RATE_LIMITED: 'Забагато запитань одразу. Зачекайте трохи й запитайте знову.',
      AGENT_DISABLED: 'Гід зараз не може спілкуватися. Наступний крок вище й далі працює.',
      AGENT_SESSION_PAUSED: 'Гід поки вичерпав свій час. Зверніться до працівників.',
      AGENT_SESSION_CLOSED: 'Цю розмову завершено. Запитайте знову, щоб почати нову.',
      AGENT_PROPOSAL_DECIDED: 'Цю пропозицію вже вирішено.',
    },
  },
};

export const GUIDE_TEXTS: Record<JourneyLanguage, GuideTexts> = { en: EN, ru: RU, uk: UK };

export function textsFor(lang: JourneyLanguage): GuideTexts {
  return GUIDE_TEXTS[lang];
}

// ---- words ----

/** A day in the guide's language, as a calendar date in UTC ("12 Nov 2026"). */
export function formatDay(iso: string, lang: JourneyLanguage): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return new Intl.DateTimeFormat(LOCALE[lang], { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' }).format(t);
}

/** "City data from 12 Nov 2026, 25 days old"; the words for "no city data" when there is no package. */
export function packageAgeWords(status: RoutingStatus | null | undefined, lang: JourneyLanguage): string | null {
  if (!status) return null;
  const pkg = status.package;
  if (!pkg) return textsFor(lang).noPackage;
  return textsFor(lang).packageAge(formatDay(pkg.created_at, lang), Math.max(0, Math.floor(pkg.age_days)));
}

/**
 * The plain banner of degraded routing (seed 000 §7.1), or null while the guide routes on the city package: when the
 * journey's routing status says `static`, or the next step fell back to a static route by itself (no path).
 */
export function degradedWords(routing: RoutingStatus | null | undefined, nextDegraded: boolean, lang: JourneyLanguage): string | null {
  const t = textsFor(lang);
  if (routing?.mode === 'static') return t.degraded(t.degradedReason[routing.degraded?.reason ?? 'missing']);
  if (nextDegraded) return t.degraded(t.degradedReason.no_path);
  return null;
}

export type NodeStatus = 'current' | 'done' | 'skipped' | 'pending';

/**
 * How the itinerary marks a node: done and skipped by their state, the journey's current node as now (the runtime
 * enters a node as it becomes current: `entered` is "where the traveller is or is heading", not "arrived"), the
 * rest pending.
 */
export function nodeStatus(node: JourneyNodeView, current: string | null): NodeStatus {
  if (node.state === 'completed') return 'done';
  if (node.state === 'skipped') return 'skipped';
  return node.id === current ? 'current' : 'pending';
}

/** Today's opening hours of a node's place, or null when it has none today (a square is always open). */
export function hoursWords(node: Pick<JourneyNodeView, 'opens_at' | 'closes_at'> & { closed_today?: boolean }, lang: JourneyLanguage): string | null {
  if (node.closed_today) return textsFor(lang).closedToday;
  return textsFor(lang).hours(node.opens_at, node.closes_at);
}

/** "8 minutes · 650 m" for a route; "Tram 7 → Opera, 3 stops" per transit leg. */
export function routeWords(route: RoutePlan | null | undefined, lang: JourneyLanguage): { summary: string; legs: string[] } | null {
  if (!route) return null;
  const t = textsFor(lang);
  const summary = route.meters > 0 ? `${t.minutes(Math.round(route.minutes))} · ${t.meters(route.meters)}` : t.minutes(Math.round(route.minutes));
  const legs = route.legs.map((leg) =>
    leg.mode === 'transit'
      ? [leg.line ?? t.tram, leg.headsign ? `→ ${leg.headsign}` : '', leg.stops !== undefined ? `, ${t.stops(leg.stops)}` : ''].join(' ').replace(/ ,/g, ',').replace(/\s+/g, ' ').trim()
      : `${t.walk} ${t.meters(leg.meters)} → ${leg.to.name}`,
  );
  return { summary, legs };
}

/** The error a traveller reads: known codes in words, anything else with its own message; never a bare code. */
export function guideProblemWords(err: unknown, lang: JourneyLanguage): string {
  const code = codeOf(err);
  const known = textsFor(lang).problems as Record<string, string>;
  if (code === 'UNAUTHORIZED') return known['FORBIDDEN']!;
  if (known[code]) return known[code];
  return err instanceof Error ? err.message : String(err);
}

/** An agent route's refusal in the traveller's words; anything else as {@link guideProblemWords}. */
export function agentProblemWords(err: unknown, lang: JourneyLanguage): string {
  const known = textsFor(lang).agent.problems as Record<string, string>;
  return known[codeOf(err)] ?? guideProblemWords(err, lang);
}

/** The stable code of a TesseraError (or anything shaped like one), '' otherwise. */
export function codeOf(err: unknown): string {
  return typeof err === 'object' && err !== null ? String((err as { code?: unknown }).code ?? '') : '';
}

/** The document's static route a ROUTE_NOT_FOUND carries (`details.static`), to show when the map has no way. */
export function staticRouteOf(err: unknown): RoutePlan | null {
  if (codeOf(err) !== 'ROUTE_NOT_FOUND') return null;
  const details = (err as { details?: unknown }).details;
  const plan = typeof details === 'object' && details !== null ? (details as { static?: unknown }).static : null;
  return typeof plan === 'object' && plan !== null && Array.isArray((plan as RoutePlan).legs) ? (plan as RoutePlan) : null;
}

/** Another screen changed the journey first (`expected_version` was stale): reload and say so. */
export const isConflict = (err: unknown) => codeOf(err) === 'JOURNEY_CONFLICT';

// ---- which journey, which sessions ----

/**
 * The journey the guide shows: the latest still `started`, else the latest that ended (its summary), else null.
 * "Latest" is by `created_at`.
 */
export function pickJourney(journeys: readonly JourneyView[]): JourneyView | null {
  const latest = [...journeys].sort((a, b) => b.created_at.localeCompare(a.created_at));
  return latest.find((j) => j.state === 'started') ?? latest[0] ?? null;
}

/**
 * Whether a session's product names a journey document: from the session's `product.journey` or the catalogue
 * entry's `journey` when the runtime sends one (a string: yes; null: no); `undefined` when neither says — the guide
 * then offers the start and lets the runtime decide (it refuses with words when there is none).
 */
export function namesJourney(session: ProductSessionView, catalogue: readonly CatalogueProduct[] | null): boolean | undefined {
  const fromSession = (session.product as Record<string, unknown>)['journey'];
  if (typeof fromSession === 'string') return true;
  if (fromSession === null) return false;
  const entry = catalogue?.find((c) => c.cid === session.product.cid || c.ref === session.product.ref);
  if (entry && 'journey' in entry) return typeof entry['journey'] === 'string' && entry['journey'] !== '';
  return undefined;
}

/**
 * The traveller's product sessions a journey can start for (the big "Start today's journey" button): active (paid),
 * whose product names a journey (or may: {@link namesJourney}), and that have no journey yet — a journey already
 * started or finished for a session is shown, never started twice. Newest first, as `GET /api/sessions` lists them.
 */
export function startableSessions(sessions: readonly ProductSessionView[], journeys: readonly JourneyView[], catalogue: readonly CatalogueProduct[] | null): ProductSessionView[] {
  const withJourney = new Set(journeys.map((j) => j.product_runtime_session_id));
  return sessions.filter((s) => s.state === 'active' && !withJourney.has(s.product_runtime_session_id) && namesJourney(s, catalogue) !== false);
}

// ---- the QR code for the node ahead ----

export interface NodePass {
  code: string;
  serial: string;
  title: string | null;
  /** The wallet's entitlement behind it, when the traveller's sessions show it (for "1 entry left…"). */
  entitlement: EntitlementView | null;
}

/**
 * The code the traveller shows at the node ahead: none when the node needs no entitlement or is already done; the
 * runtime's `covered_by` when it names one (the runtime knows which entitlement covers the node's venue); else an
 * active held entitlement of the needed product valid at the needed venue (the wallet's own view, for a runtime
 * that has not matched it yet). Null also when nothing the traveller holds covers it (the guide says so).
 */
export function passForNode(node: JourneyNodeView | null | undefined, sessions: readonly ProductSessionView[]): NodePass | null {
  if (!node?.needs || node.state === 'completed' || node.state === 'skipped') return null;
  const held = sessions.flatMap((s) => s.entitlements.map((e) => ({ s, e })));
  if (node.covered_by?.code) {
    const found = held.find(({ e }) => e.serial === node.covered_by!.serial)?.e ?? null;
    return { code: node.covered_by.code, serial: node.covered_by.serial, title: node.covered_by.title ?? found?.title ?? null, entitlement: found };
  }
  const needs = node.needs;
  const match = held.find(({ s, e }) => e.state === 'active' && typeof e.code === 'string' && (s.product.id === needs.product || e.product_ref?.split('@')[0] === needs.product) && (e.venues === undefined || e.venues.includes(needs.venue)));
  return match ? { code: match.e.code!, serial: match.e.serial, title: match.e.title ?? match.s.product.title, entitlement: match.e } : null;
}

// ---- the offline map ----

export interface Bounds {
  south: number;
  west: number;
  north: number;
  east: number;
}

/** The box around `points`, grown by `margin` of its size on each side (and to at least `minSpan` degrees). */
export function boundsOf(points: readonly LatLon[], margin = 0.08, minSpan = 0.002): Bounds | null {
  if (points.length === 0) return null;
  let south = Infinity;
  let west = Infinity;
  let north = -Infinity;
  let east = -Infinity;
  for (const p of points) {
    if (!Number.isFinite(p.lat) || !Number.isFinite(p.lon)) continue;
    south = Math.min(south, p.lat);
    north = Math.max(north, p.lat);
    west = Math.min(west, p.lon);
    east = Math.max(east, p.lon);
  }
  if (!Number.isFinite(south)) return null;
  const dLat = Math.max(north - south, minSpan);
  const dLon = Math.max(east - west, minSpan);
  const midLat = (north + south) / 2;
  const midLon = (east + west) / 2;
  const halfLat = (dLat / 2) * (1 + 2 * margin);
  const halfLon = (dLon / 2) * (1 + 2 * margin);
  return { south: midLat - halfLat, north: midLat + halfLat, west: midLon - halfLon, east: midLon + halfLon };
}

export interface Projection {
  /** The SVG's viewBox size: `width` as asked, `height` keeping the map's true proportions. */
  width: number;
  height: number;
  /** lat/lon → SVG x (east grows right) and y (north is up). */
  project(p: LatLon): [number, number];
}

/**
 * An equirectangular projection of `bounds` onto a `width`-wide SVG: longitude scaled by cos(latitude) at the box's
 * middle, so a city's streets keep their shape (the error over a few kilometres is far below a pixel).
 */
export function projection(bounds: Bounds, width = 1000): Projection {
  const midLat = ((bounds.north + bounds.south) / 2) * (Math.PI / 180);
  const kx = Math.cos(midLat);
  const spanX = Math.max((bounds.east - bounds.west) * kx, 1e-9);
  const spanY = Math.max(bounds.north - bounds.south, 1e-9);
  const scale = width / spanX;
  const height = Math.round(spanY * scale * 10) / 10;
  return {
    width,
    height,
    project: (p) => [(p.lon - bounds.west) * kx * scale, (bounds.north - p.lat) * scale],
  };
}

/**
 * `bounds` grown (never shrunk) about its centre to `aspect` = width / height on the projected map, so the SVG's
 * viewBox has the proportions of the box it is shown in: one unit is one pixel, markers keep their size on any screen.
 */
export function fitAspect(bounds: Bounds, aspect: number): Bounds {
  const kx = Math.cos((((bounds.north + bounds.south) / 2) * Math.PI) / 180);
  const w = (bounds.east - bounds.west) * kx;
  const h = bounds.north - bounds.south;
  if (!(aspect > 0) || w <= 0 || h <= 0) return bounds;
  const midLat = (bounds.north + bounds.south) / 2;
  const midLon = (bounds.east + bounds.west) / 2;
  const [nw, nh] = w / h < aspect ? [h * aspect, h] : [w, w / aspect];
  return { south: midLat - nh / 2, north: midLat + nh / 2, west: midLon - nw / kx / 2, east: midLon + nw / kx / 2 };
}

const num = (v: number) => (Math.round(v * 10) / 10).toString();

/** An SVG path (`M x y L x y …`) of one polyline; '' for fewer than two points. */
export function pathOf(points: readonly LatLon[], proj: Projection): string {
  if (points.length < 2) return '';
  return points.map((p, i) => {
    const [x, y] = proj.project(p);
    return `${i === 0 ? 'M' : 'L'}${num(x)} ${num(y)}`;
  }).join('');
}

/** Many polylines as one SVG path (thousands of streets in one DOM node). */
export function pathsOf(lines: readonly (readonly LatLon[])[], proj: Projection): string {
  return lines.map((l) => pathOf(l, proj)).join('');
}

/** The route drawn bold on the map: its legs' paths, or a straight line when a leg carries none. */
export function routeLines(route: RoutePlan | null | undefined): Array<{ mode: 'walk' | 'transit'; path: LatLon[] }> {
  if (!route) return [];
  const lines = route.legs.map((leg) => ({ mode: leg.mode, path: leg.path.length >= 2 ? leg.path : [leg.from.location, leg.to.location] }));
  return lines.length > 0 ? lines : [];
}

/**
 * What the map frames: the journey's places and the route with a margin (large enough markers on a kiosk; the
 * package's streets beyond it are clipped), or the package's whole box when there are no places yet.
 */
export function mapBounds(mapBbox: Bounds | null | undefined, places: readonly LatLon[], route: readonly LatLon[]): Bounds | null {
  return boundsOf([...places, ...route], 0.12) ?? mapBbox ?? null;
}
