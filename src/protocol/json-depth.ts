// The nesting depth of a JSON text, measured on the raw text before JSON.parse sees it.
//
// Why before: a frame of 20,000 nested arrays is 40 KB, well inside the frame limit, yet everything
// recursive that later touches the parsed value (JSON.stringify in the store, structuredClone, pino's
// serialisers) overflows the stack; and JSON.parse itself spends seconds building a few million nested
// arrays out of a 10 MB frame. A linear scan with no recursion and no allocation refuses such a frame for
// the cost of reading it once. Strings are skipped with indexOf (native), so a large base64 audio_chunk
// costs almost nothing.

const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \
const OPEN_ARRAY = 0x5b; // [
const OPEN_OBJECT = 0x7b; // {
const CLOSE_ARRAY = 0x5d; // ]
const CLOSE_OBJECT = 0x7d; // }

/**
 * True when `text` opens more than `maxDepth` arrays/objects inside one another (brackets inside strings
 * do not count). Stops reading at the first bracket past the limit. Says nothing about whether the text
 * is valid JSON: JSON.parse decides that afterwards.
 */
export function exceedsJsonDepth(text: string, maxDepth: number): boolean {
  let depth = 0;
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i);
    if (code === QUOTE) {
      i = endOfString(text, i);
      if (i < 0) return false; // unterminated string: not JSON, JSON.parse reports it
    } else if (code === OPEN_ARRAY || code === OPEN_OBJECT) {
      if (++depth > maxDepth) return true;
    } else if (code === CLOSE_ARRAY || code === CLOSE_OBJECT) {
      depth--;
    }
  }
  return false;
}

/** The index of the quote that closes the string opened at `start`, or -1. */
function endOfString(text: string, start: number): number {
  let from = start + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    if (quote < 0) return -1;
    // Escaped when preceded by an odd number of backslashes.
    let backslashes = 0;
    for (let j = quote - 1; j > start && text.charCodeAt(j) === BACKSLASH; j--) backslashes++;
    if (backslashes % 2 === 0) return quote;
    from = quote + 1;
  }
}
