/**
 * Journey Guide: the traveller's dialogue with the device (issue 6 point 6). A text box and a push-to-talk
 * button feed the same I/O router; the transcript shows what was typed or heard and what the device answered;
 * the mic and tts state comes from the lock events; when voice is off the reason is shown.
 *
 * One dialogue per traveller (issue 13 point 14): the page shows one dialogue session at a time. Its words, the
 * answers and the questions of the runs it started are shown; nobody else's. "New traveller" ends it and starts
 * a fresh one (the old traveller's open questions expire, their later messages go to the operator's inbox); so
 * does the runtime's idle reset, which the page follows.
 *
 * Layout (issue 13 point 17): the conversation scrolls and keeps its newest turn in view; the question, the input
 * and the talk button stay docked below it, on any screen. Large portrait screens (and a `kiosk` class on an
 * ancestor) get large type and touch targets (renderer/src/styles.css).
 *
 * Passes & tickets (issue 14 point 7): a second tab beside the conversation holds the traveller's wallet
 * (./wallet.tsx); the traveller it buys for is the dialogue session shown, so "New traveller" empties it too.
 *
 * The day's guide (issue 15 point 4): a third tab, "Guide" (./guide.tsx), leads the same traveller through the
 * journey their pass names: next step, itinerary, offline map, the pass's QR code, the guide's proposals.
 */
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { DialogueConnection, DialogueMessage, IoClient, IoStatusView, TesseraClient, TesseraEvent } from '../../../main/common/api.js';
import { isTesseraError } from '../../../main/common/errors.js';
import { startCapture } from './journey-voice.js';
import type { Capture } from './journey-voice.js';
import { GuidePanel } from './guide.js';
import { guideLanguage, textsFor } from './guide-model.js';
import { WalletPanel } from './wallet.js';
import { travellerLanguage } from './wallet-model.js';

/** One line of the dialogue. */
interface Turn {
  key: string;
  who: 'you' | 'tessera' | 'note';
  text: string;
  detail?: string;
}

/** How many turns stay on screen. */
const KEEP = 100;

/**
 * The dialogue on screen, kept while the page lives: switching to another area and back shows the same
 * traveller's conversation; a reload starts a new traveller.
 */
type Tab = 'talk' | 'guide' | 'wallet';
const kept: { session: string | null; turns: Turn[]; seen: Set<string>; tab: Tab } = { session: null, turns: [], seen: new Set(), tab: 'talk' };

const message = (err: unknown) => (isTesseraError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err));

export function JourneyArea(props: { client: TesseraClient }) {
  const io = props.client.io;
  const [turns, setTurns] = useState<Turn[]>(kept.turns);
  const [session, setSession] = useState<string | null>(kept.session);
  const [status, setStatus] = useState<IoStatusView | null>(null);
  const [voice, setVoice] = useState<{ enabled: boolean; reason: string | null } | null>(null);
  const [holders, setHolders] = useState<Record<string, string | null>>({});
  const [speaking, setSpeaking] = useState(false);
  const [talking, setTalking] = useState(false);
  const [text, setText] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const [tab, setTab] = useState(kept.tab);
  const openTab = (t: Tab) => setTab((kept.tab = t));
  const dialogue = useRef<DialogueConnection | null>(null);
  const capture = useRef<Promise<Capture> | null>(null);
  // The session shown, for handlers registered once: events of any other session are not this traveller's.
  const current = useRef<string | null>(kept.session);
  const starting = useRef<Promise<string> | null>(null);
  const list = useRef<HTMLOListElement | null>(null);

  const add = (turn: Turn) => {
    if (kept.seen.has(turn.key)) return;
    kept.seen.add(turn.key);
    kept.turns = [...kept.turns, turn].slice(-KEEP);
    setTurns(kept.turns);
  };

  /** Shows `id` from now on, on a clean page. */
  const show = (id: string) => {
    current.current = kept.session = id;
    kept.turns = [];
    kept.seen = new Set();
    setTurns([]);
    setSession(id);
    dialogue.current?.join(id);
  };

  /** Starts a session (ending `end` first: the next traveller); concurrent callers share one start. */
  const begin = (client: IoClient, end?: string): Promise<string> => {
    starting.current ??= client
      .session(end ? { end } : {})
      .then((started) => {
        show(started.session.id);
        return started.session.id;
      })
      .finally(() => {
        starting.current = null;
      });
    return starting.current;
  };
  /** The session to speak in: the one shown, or the one being started. */
  const ensure = (client: IoClient): Promise<string> => (current.current ? Promise.resolve(current.current) : begin(client));

  useEffect(() => {
    if (!io) return;
    let alive = true;
    const refresh = () =>
      io.status().then(
        (s) => {
          if (!alive) return;
          setStatus(s);
          setVoice({ enabled: s.voice_enabled, reason: s.voice_disabled_reason });
          setHolders(Object.fromEntries(s.locks.holders.map((h) => [h.resource, h.owner])));
        },
        (err: unknown) => alive && setProblem(message(err)),
      );
    /** The shown session ended elsewhere (the idle reset, or another tab's "new traveller"): start afresh. */
    const ended = (id: string) => {
      if (id !== current.current) return;
      current.current = null;
      void begin(io).then(refresh, (err: unknown) => alive && setProblem(message(err)));
    };
    void refresh();
    const mine = (p: Record<string, unknown>) => p['session'] !== undefined && p['session'] === current.current;
    const onEvent = (e: TesseraEvent) => {
      const p = (e.payload ?? {}) as Record<string, unknown>;
      switch (e.topic) {
        case 'io.input':
          if (!mine(p)) break;
          add({ key: `in:${e.id}`, who: 'you', text: String(p['text'] ?? ''), detail: [p['channel'] === 'voice' ? 'spoken' : 'typed', p['kind'] === 'intent' ? `→ ${String(p['intent'])}` : p['kind'] === 'answer' ? '→ answer' : p['kind'] === 'agent' ? '→ guide' : '→ not understood'].join(' ') });
          void refresh();
          break;
        case 'io.delivered':
        case 'io.inboxed': {
          // This traveller's messages, and announcements for everyone that reached the screen.
          const forAll = p['session'] === undefined && Array.isArray(p['channels']) && (p['channels'] as unknown[]).includes('ui');
          if (!mine(p) && !forAll) break;
          add({ key: `out:${String(p['message_id'])}`, who: 'tessera', text: String(p['text'] ?? ''), ...(e.topic === 'io.inboxed' ? { detail: 'kept in the inbox' } : {}) });
          void refresh();
          break;
        }
        case 'io.session.ended':
          ended(String(p['session']));
          break;
        case 'io.lock.changed':
          setHolders((prev) => ({ ...prev, [String(p['resource'])]: (p['holder'] as string | null) ?? null }));
          break;
        case 'io.voice.speaking':
          setSpeaking(true);
          break;
        case 'io.voice.spoken':
        case 'io.degraded':
          setSpeaking(false);
          break;
        case 'io.voice.status':
          void refresh();
          break;
        case 'io.voice.heard':
          if (mine(p) && p['outcome'] === 'no_speech') add({ key: `heard:${e.id}`, who: 'note', text: 'Nothing was heard — hold the button while you speak.' });
          break;
      }
    };
    const unsubscribe = props.client.subscribe(['io.**'], onEvent);
    const onDialogue = (m: DialogueMessage) => {
      if (m.type === 'hello') setVoice({ enabled: m.voice_enabled, reason: m.voice_disabled_reason });
      else if (m.type === 'ask') void refresh();
      else if (m.type === 'session.ended') ended(m.session);
      else if (m.type === 'error') setProblem(`${m.error.code}: ${m.error.message}`);
    };
    // Browser: the /ws/io socket makes this page a ui client of its session and carries push-to-talk audio.
    // Electron: the window's io.* subscription does, and the device microphone is captured in the main process.
    dialogue.current = io.dialogue ? io.dialogue(onDialogue) : null;
    if (current.current) dialogue.current?.join(current.current);
    else void begin(io).catch((err: unknown) => alive && setProblem(message(err)));
    return () => {
      alive = false;
      unsubscribe();
      dialogue.current?.close();
      dialogue.current = null;
    };
  }, [props.client]);

  const question = status?.questions.find((q) => q.session !== null && q.session === session);
  // The newest turn stays in view: the conversation scrolls to it whenever it grows or the dock changes height.
  useLayoutEffect(() => {
    const el = list.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [turns, question?.prompt, problem, tab]);

  if (!io) {
    return (
      <section class="journey">
        <h2>Journey Guide</h2>
        <p class="hint">The dialogue needs the browser transport in this version; open the URL `tessera start` prints.</p>
      </section>
    );
  }

  const send = async (e: Event) => {
    e.preventDefault();
    const value = text.trim();
    if (!value) return;
    setProblem(null);
    try {
      try {
        await io.input({ text: value, session: await ensure(io) });
      } catch (err) {
        // The dialogue was reset while this was typed (the idle reset): say it to a fresh one.
        if (!isTesseraError(err) || err.code !== 'IO_SESSION_ENDED') throw err;
        current.current = null;
        await io.input({ text: value, session: await begin(io) });
      }
      setText('');
    } catch (err) {
      setProblem(message(err));
    }
  };

  const nextTraveller = async () => {
    setProblem(null);
    setText('');
    try {
      await begin(io, current.current ?? undefined);
      setStatus(await io.status());
    } catch (err) {
      setProblem(message(err));
    }
  };

  const talk = () => {
    if (capture.current) return;
    setProblem(null);
    if (io.talk) {
      const device = io.talk;
      setTalking(true);
      const done = device.start().then(
        (heard) => heard.outcome === 'no_speech' && add({ key: `talk:${Date.now()}`, who: 'note', text: 'Nothing was heard — hold the button while you speak.' }),
        (err: unknown) => setProblem(`The microphone cannot be used: ${message(err)}`),
      );
      capture.current = Promise.resolve({ stop: () => device.stop().then(() => done).then(() => undefined) });
      return;
    }
    if (!dialogue.current) return;
    setTalking(true);
    capture.current = startCapture(dialogue.current);
    capture.current.catch((err: unknown) => {
      capture.current = null;
      setTalking(false);
      setProblem(`The microphone cannot be used: ${message(err)}`);
    });
  };
  const release = async () => {
    const pending = capture.current;
    if (!pending) return;
    capture.current = null;
    setTalking(false);
    try {
      await (await pending).stop();
    } catch {
      // Already reported by talk().
    }
  };

  const voiceOn = voice?.enabled === true && status?.in['voice']?.available !== false;
  const micHolder = holders['mic'] ?? null;
  const ttsHolder = holders['tts'] ?? null;

  return (
    <section class={tab === 'guide' ? 'journey guide-open' : 'journey'}>
      <div class="toolbar">
        <h2>Journey Guide</h2>
        <span class={voiceOn ? 'pill ok' : 'pill warn'} data-testid="voice-state">{voice === null ? 'Voice…' : voiceOn ? 'Voice on' : 'Voice off'}</span>
        <span class={talking || micHolder ? 'pill warn' : 'pill'} data-testid="mic-state">{talking ? 'Mic: listening to you' : micHolder ? `Mic: in use (${micHolder})` : 'Mic: free'}</span>
        <span class={speaking || ttsHolder ? 'pill warn' : 'pill'} data-testid="tts-state">{speaking ? 'Speaking…' : ttsHolder ? `TTS: in use (${ttsHolder})` : 'TTS: free'}</span>
        <div class="journey-tabs" role="tablist" aria-label="Journey Guide">
          <button type="button" role="tab" id="journey-tab-talk" aria-controls="journey-panel" aria-selected={tab === 'talk'} class={tab === 'talk' ? 'tab active' : 'tab'} data-testid="tab-talk" onClick={() => openTab('talk')}>
            Conversation
          </button>
          <button type="button" role="tab" id="journey-tab-guide" aria-controls="journey-panel" aria-selected={tab === 'guide'} class={tab === 'guide' ? 'tab active' : 'tab'} data-testid="tab-guide" onClick={() => openTab('guide')}>
            {textsFor(guideLanguage(travellerLanguage())).tab}
          </button>
          <button type="button" role="tab" id="journey-tab-wallet" aria-controls="journey-panel" aria-selected={tab === 'wallet'} class={tab === 'wallet' ? 'tab active' : 'tab'} data-testid="tab-wallet" onClick={() => openTab('wallet')}>
            Passes &amp; tickets
          </button>
        </div>
        <button type="button" class="secondary" data-testid="new-traveller" title="End this conversation and start afresh for the next person" onClick={() => void nextTraveller()}>
          New traveller
        </button>
      </div>
      {voice && !voiceOn && (
        <p class="hint" data-testid="voice-reason">
          Voice is off: {voice.reason ?? status?.in['voice']?.reason ?? 'no speech engines here'}
        </p>
      )}
      {tab === 'guide' ? (
        <div class="journey-guide" id="journey-panel" role="tabpanel" aria-labelledby="journey-tab-guide">
          <GuidePanel client={props.client} traveller={session} />
        </div>
      ) : null}
      {tab === 'wallet' ? (
        <div class="journey-wallet" id="journey-panel" role="tabpanel" aria-labelledby="journey-tab-wallet">
          <WalletPanel client={props.client} traveller={session} />
        </div>
      ) : null}
      {tab === 'talk' ? (
        <>
          <ol class="dialogue" ref={list} data-testid="dialogue" data-session={session ?? ''} aria-live="polite">
            {turns.length === 0 && <li class="turn note">Ask something — type it, or hold the button and speak. Try “hello” or “set a timer for 2 minutes”.</li>}
            {turns.map((t) => (
              <li key={t.key} class={`turn ${t.who}`} data-who={t.who}>
                <span class="turn-text">{t.text}</span>
                {t.detail && <span class="turn-detail">{t.detail}</span>}
              </li>
            ))}
          </ol>
          <div class="journey-dock">
            {question && (
              <p class="journey-question" data-testid="question">
                {question.prompt}
              </p>
            )}
            <form class="inline journey-input" onSubmit={(e) => void send(e)}>
              <input class="wide" data-testid="say-input" aria-label="Type to Tessera" placeholder={question ? 'Your answer…' : 'Type here…'} value={text} onInput={(e) => setText((e.target as HTMLInputElement).value)} maxLength={2000} />
              <button type="submit" data-testid="say-send">Send</button>
              <button
                type="button"
                class={talking ? 'ptt talking' : 'ptt'}
                data-testid="ptt"
                disabled={!voiceOn}
                aria-pressed={talking}
                title={voiceOn ? 'Hold while you speak' : 'Voice is off'}
                onPointerDown={talk}
                onPointerUp={() => void release()}
                onPointerLeave={() => void release()}
                onKeyDown={(e) => (e.key === ' ' || e.key === 'Enter') && !e.repeat && (e.preventDefault(), talk())}
                onKeyUp={(e) => (e.key === ' ' || e.key === 'Enter') && (e.preventDefault(), void release())}
              >
                {talking ? 'Listening… release to send' : 'Hold to talk'}
              </button>
            </form>
            {problem && (
              <p class="error" role="alert" data-testid="journey-error">
                {problem}
              </p>
            )}
          </div>
        </>
      ) : null}
    </section>
  );
}
