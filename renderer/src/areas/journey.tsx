/**
 * Journey Guide: the traveller's dialogue with the device (issue 6 point 6). A text box and a push-to-talk
 * button feed the same I/O router; the transcript shows what was typed or heard and what the device answered;
 * the mic and tts state comes from the lock events; when voice is off the reason is shown.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { DialogueConnection, DialogueMessage, IoStatusView, TesseraClient, TesseraEvent } from '../../../main/common/api.js';
import { isTesseraError } from '../../../main/common/errors.js';
import { startCapture } from './journey-voice.js';
import type { Capture } from './journey-voice.js';

/** One line of the dialogue. */
interface Turn {
  key: string;
  who: 'you' | 'tessera' | 'note';
  text: string;
  detail?: string;
}

/** How many turns stay on screen. */
const KEEP = 100;

const message = (err: unknown) => (isTesseraError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err));

export function JourneyArea(props: { client: TesseraClient }) {
  const io = props.client.io;
  const [turns, setTurns] = useState<Turn[]>([]);
  const [status, setStatus] = useState<IoStatusView | null>(null);
  const [voice, setVoice] = useState<{ enabled: boolean; reason: string | null } | null>(null);
  const [holders, setHolders] = useState<Record<string, string | null>>({});
  const [speaking, setSpeaking] = useState(false);
  const [talking, setTalking] = useState(false);
  const [text, setText] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const dialogue = useRef<DialogueConnection | null>(null);
  const capture = useRef<Promise<Capture> | null>(null);
  const seen = useRef(new Set<string>());

  const add = (turn: Turn) => {
    if (seen.current.has(turn.key)) return;
    seen.current.add(turn.key);
    setTurns((prev) => [...prev, turn].slice(-KEEP));
  };

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
    void refresh();
    const onEvent = (e: TesseraEvent) => {
      const p = (e.payload ?? {}) as Record<string, unknown>;
      switch (e.topic) {
        case 'io.input':
          add({ key: `in:${e.id}`, who: 'you', text: String(p['text'] ?? ''), detail: [p['channel'] === 'voice' ? 'spoken' : 'typed', p['kind'] === 'intent' ? `→ ${String(p['intent'])}` : p['kind'] === 'answer' ? '→ answer' : '→ not understood'].join(' ') });
          void refresh();
          break;
        case 'io.delivered':
        case 'io.inboxed':
          add({ key: `out:${String(p['message_id'])}`, who: 'tessera', text: String(p['text'] ?? ''), ...(e.topic === 'io.inboxed' ? { detail: 'kept in the inbox' } : {}) });
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
          if (p['outcome'] === 'no_speech') add({ key: `heard:${e.id}`, who: 'note', text: 'Nothing was heard — hold the button while you speak.' });
          break;
      }
    };
    const unsubscribe = props.client.subscribe(['io.**'], onEvent);
    const onDialogue = (m: DialogueMessage) => {
      if (m.type === 'hello') setVoice({ enabled: m.voice_enabled, reason: m.voice_disabled_reason });
      else if (m.type === 'ask') void refresh();
      else if (m.type === 'error') setProblem(`${m.error.code}: ${m.error.message}`);
    };
    // Browser: the /ws/io socket makes this page a ui client and carries push-to-talk audio. Electron: the
    // window's io.* subscription does, and the device microphone is captured in the main process (io.talk).
    dialogue.current = io.dialogue ? io.dialogue(onDialogue) : null;
    return () => {
      alive = false;
      unsubscribe();
      dialogue.current?.close();
      dialogue.current = null;
    };
  }, [props.client]);

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
      await io.input({ text: value });
      setText('');
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
  const question = status?.questions[0];
  const micHolder = holders['mic'] ?? null;
  const ttsHolder = holders['tts'] ?? null;

  return (
    <section class="journey">
      <div class="toolbar">
        <h2>Journey Guide</h2>
        <span class={voiceOn ? 'pill ok' : 'pill warn'} data-testid="voice-state">{voice === null ? 'Voice…' : voiceOn ? 'Voice on' : 'Voice off'}</span>
        <span class={talking || micHolder ? 'pill warn' : 'pill'} data-testid="mic-state">{talking ? 'Mic: listening to you' : micHolder ? `Mic: in use (${micHolder})` : 'Mic: free'}</span>
        <span class={speaking || ttsHolder ? 'pill warn' : 'pill'} data-testid="tts-state">{speaking ? 'Speaking…' : ttsHolder ? `TTS: in use (${ttsHolder})` : 'TTS: free'}</span>
      </div>
      {voice && !voiceOn && (
        <p class="hint" data-testid="voice-reason">
          Voice is off: {voice.reason ?? status?.in['voice']?.reason ?? 'no speech engines here'}
        </p>
      )}
      {question && (
        <p class="journey-question" data-testid="question">
          {question.prompt}
        </p>
      )}
      <ol class="dialogue" data-testid="dialogue" aria-live="polite">
        {turns.length === 0 && <li class="turn note">Ask something — type it, or hold the button and speak. Try “what's next?”.</li>}
        {turns.map((t) => (
          <li key={t.key} class={`turn ${t.who}`} data-who={t.who}>
            <span class="turn-text">{t.text}</span>
            {t.detail && <span class="turn-detail">{t.detail}</span>}
          </li>
        ))}
      </ol>
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
    </section>
  );
}
