/**
 * Pronunciations for words the CMU dictionary lacks, from espeak-ng's own letter-to-sound rules: espeak-ng
 * `-x` prints its phoneme mnemonics (en-us: "k'A@kIv" for Kharkiv), which map onto the 39 ARPAbet phones of
 * the pocketsphinx model. This is what lets a rule set name a new city or brand without a hand-written
 * dictionary entry; a mnemonic outside the table makes the word unpronounceable (reported, as before).
 */
import { execFileSync } from 'node:child_process';

/** espeak-ng (English) mnemonics → ARPAbet, longest first so "aI@" wins over "aI" and "a". */
const TABLE: ReadonlyArray<readonly [string, string]> = (
  [
    ['aI@', 'AY ER'], ['aU@', 'AW ER'], ['i@3', 'IH R'], ['3r', 'ER'], ['e@', 'EH R'], ['i@', 'IY AH'], ['U@', 'UH R'], ['A@', 'AA R'],
    ['o@', 'AO R'], ['O@', 'AO R'], ['3:', 'ER'], ['A:', 'AA'], ['O:', 'AO'], ['u:', 'UW'], ['i:', 'IY'], ['aI', 'AY'],
    ['aU', 'AW'], ['eI', 'EY'], ['oU', 'OW'], ['OI', 'OY'], ['@L', 'AH L'], ['@5', 'AH L'], ['@2', 'AH'], ['a#', 'AH'],
    ['I#', 'IH'], ['I2', 'IH'], ['t#', 'T'], ['d#', 'D'], ['tS', 'CH'], ['dZ', 'JH'], ['n-', 'AH N'], ['l-', 'AH L'],
    ['r-', 'ER'], ['@', 'AH'], ['3', 'ER'], ['a', 'AE'], ['A', 'AA'], ['E', 'EH'], ['I', 'IH'], ['i', 'IY'], ['0', 'AA'],
    ['O', 'AO'], ['V', 'AH'], ['U', 'UH'], ['u', 'UW'], ['e', 'EH'], ['o', 'OW'], ['S', 'SH'], ['Z', 'ZH'], ['T', 'TH'],
    ['D', 'DH'], ['N', 'NG'], ['j', 'Y'], ['h', 'HH'], ['r', 'R'], ['l', 'L'], ['w', 'W'], ['b', 'B'], ['p', 'P'],
    ['t', 'T'], ['d', 'D'], ['k', 'K'], ['g', 'G'], ['f', 'F'], ['v', 'V'], ['s', 'S'], ['z', 'Z'], ['m', 'M'], ['n', 'N'],
    ['x', 'K'], ['?', 'T'],
  ] as Array<[string, string]>
).sort((a, b) => b[0].length - a[0].length);

/** Stress and syllable marks that carry no phone. */
const MARKS = new Set(["'", ',', '=', '_', ':', ' ', '|']);

/**
 * ARPAbet phones for one line of espeak-ng `-x` output, or undefined when it holds a mnemonic outside the
 * table (the word is then left out rather than mispronounced).
 */
export function espeakToArpabet(mnemonics: string): string | undefined {
  const phones: string[] = [];
  let i = 0;
  outer: while (i < mnemonics.length) {
    for (const [from, to] of TABLE) {
      if (mnemonics.startsWith(from, i)) {
        phones.push(to);
        i += from.length;
        continue outer;
      }
    }
    if (MARKS.has(mnemonics[i]!)) {
      i++;
      continue;
    }
    return undefined;
  }
  return phones.length > 0 ? phones.join(' ') : undefined;
}

/**
 * Ask espeak-ng (US English) how it says each of `words` and convert to ARPAbet. Words it cannot be asked
 * about (anything but letters and apostrophes) or whose phonemes do not convert are absent from the result.
 * One process for all words; a failure of the process yields an empty map.
 */
export function espeakPronunciations(bin: string, words: readonly string[]): Map<string, string> {
  const asked = words.filter((w) => /^[\p{L}']+$/u.test(w));
  const out = new Map<string, string>();
  if (asked.length === 0) return out;
  let text: string;
  try {
    // One clause per line ("word."), so espeak-ng prints one line of phonemes per word.
    text = execFileSync(bin, ['-q', '-x', '-v', 'en-us', '--stdin'], { input: asked.map((w) => `${w}.`).join('\n'), encoding: 'utf8', timeout: 10_000, stdio: ['pipe', 'pipe', 'ignore'] });
  } catch {
    return out;
  }
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines.length !== asked.length) return out;
  asked.forEach((w, i) => {
    const phones = espeakToArpabet(lines[i]!);
    if (phones) out.set(w, phones);
  });
  return out;
}
