// Joins recogniser texts into one transcript. Vosk's Chinese (and Japanese) models emit one token per
// word separated by spaces, e.g. "我 想 订 一 张 票"; readers expect "我想订一张票". Latin words keep their
// single spaces, and a space between a CJK character and a latin word stays (that is how mixed text is
// written, e.g. "我的 iPhone 坏了").

// Han ideographs, kana, CJK symbols/punctuation and full-width forms. Hangul is left out on purpose:
// Korean separates words with spaces.
const CJK = String.raw`[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\u3000-\u303f\uff00-\uffef]`;
const SPACE_BETWEEN_CJK = new RegExp(`(?<=${CJK})\\s+(?=${CJK})`, 'gu');
const WHITESPACE_RUN = /\s+/g;

/** Joins segment texts with single spaces, dropping empty parts and the spaces between CJK characters. */
export function joinTranscript(parts: readonly string[]): string {
  let joined = '';
  for (const part of parts) {
    const text = part.trim();
    if (text === '') continue;
    joined = joined === '' ? text : `${joined} ${text}`;
  }
  return joined.replace(WHITESPACE_RUN, ' ').replace(SPACE_BETWEEN_CJK, '');
}
