import { LlmServiceError } from '../../errors.js';

/** Receives the next piece of suggestion `index`'s text as soon as the model has written it. */
export type SuggestionDeltaHandler = (index: number, delta: string) => void;

// Parser states. Numbers, not strings: the switch runs once per character of model output.
const SEEK_OBJECT = 0; // before the top-level `{` (skips a ```json fence or chatter)
const KEY_OR_END = 1; // after `{`
const KEY = 2; // inside a key string
const COLON = 3; // after a key
const ARRAY_START = 4; // after `"suggestions":`
const ITEM_OR_END = 5; // after `[`
const COMMA_OR_END = 6; // after an item
const ITEM = 7; // after `,` in the array
const STRING = 8; // inside a suggestion
const ESCAPE = 9; // after `\` in a suggestion
const UNICODE = 10; // inside `\uXXXX`
const AFTER_VALUE = 11; // after a member's value
const NEXT_KEY = 12; // after `,` in the object
const SKIP_VALUE = 13; // inside the value of a member we do not use
const DONE = 14; // after the top-level `}` (a closing fence may follow)

const STATE_NAMES = [
  'before object', 'object', 'key', 'colon', 'array', 'array', 'array', 'array',
  'string', 'escape', 'unicode escape', 'object', 'object', 'value', 'done',
] as const;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/**
 * An incremental parser for `{"suggestions": ["...", ...]}` as a model writes it, token by token. Each
 * suggestion's decoded text goes to `onDelta` as soon as it arrives, at most once per push(), so the user
 * sees the first reply while the model is still writing the others. Escapes (including `\uXXXX` surrogate
 * pairs) may be split anywhere between pushes; a high surrogate is held back until its pair arrives so no
 * delta ever ends in half a character. Anything before the first `{` (a ```json fence) and after the last
 * `}` is ignored; other members of the object are skipped.
 */
export class SuggestionsParser {
  readonly #onDelta: SuggestionDeltaHandler;
  readonly #suggestions: string[] = [];
  #state = SEEK_OBJECT;
  #offset = 0;
  #key = '';
  #isKeyEscape = false;
  /** Text of the current suggestion decoded during this push(), not yet handed to onDelta. */
  #pending = '';
  /** A trailing high surrogate waiting for its low half. */
  #held = '';
  #current = '';
  #unicode = 0;
  #unicodeDigits = 0;
  #skipDepth = 0;
  #isSkipStarted = false;
  #isSkipInString = false;
  #isSkipEscape = false;

  constructor(onDelta: SuggestionDeltaHandler) {
    this.#onDelta = onDelta;
  }

  push(text: string): void {
    const length = text.length;
    let i = 0;
    while (i < length) {
      if (this.#state === STRING) {
        // Fast path: copy the run of plain characters up to the next quote or backslash in one slice.
        const start = i;
        let c = text.charCodeAt(i);
        while (c !== QUOTE && c !== BACKSLASH) {
          if (++i === length) break;
          c = text.charCodeAt(i);
        }
        if (i > start) this.#pending += text.slice(start, i);
        if (i === length) break;
      }
      this.#step(text.charCodeAt(i), i);
      i++;
    }
    this.#offset += length;
    if (this.#pending.length > 0) this.#flush(false);
  }

  /** The model finished: returns every suggestion, or throws when the JSON did not close. */
  end(): string[] {
    if (this.#state !== DONE) {
      throw new LlmServiceError('model output ended before the suggestions JSON was complete', {
        details: `ended in ${STATE_NAMES[this.#state]} after ${this.#offset} characters`,
      });
    }
    return this.#suggestions;
  }

  #step(c: number, i: number): void {
    switch (this.#state) {
      case SEEK_OBJECT:
        if (c === 0x7b) this.#state = KEY_OR_END;
        return;
      case KEY_OR_END:
        if (isWhitespace(c)) return;
        if (c === QUOTE) return this.#startKey();
        if (c === 0x7d) return void (this.#state = DONE);
        return this.#fail(c, i);
      case NEXT_KEY:
        if (isWhitespace(c)) return;
        if (c === QUOTE) return this.#startKey();
        return this.#fail(c, i);
      case KEY:
        if (!this.#isKeyEscape) {
          if (c === BACKSLASH) return void (this.#isKeyEscape = true);
          if (c === QUOTE) return void (this.#state = COLON);
        }
        this.#isKeyEscape = false;
        this.#key += String.fromCharCode(c);
        return;
      case COLON:
        if (isWhitespace(c)) return;
        if (c !== 0x3a) return this.#fail(c, i);
        if (this.#key === 'suggestions') {
          this.#state = ARRAY_START;
        } else {
          this.#state = SKIP_VALUE;
          this.#skipDepth = 0;
          this.#isSkipStarted = false;
          this.#isSkipInString = false;
          this.#isSkipEscape = false;
        }
        return;
      case ARRAY_START:
        if (isWhitespace(c)) return;
        if (c === 0x5b) return void (this.#state = ITEM_OR_END);
        return this.#fail(c, i);
      case ITEM_OR_END:
        if (isWhitespace(c)) return;
        if (c === QUOTE) return this.#startString();
        if (c === 0x5d) return void (this.#state = AFTER_VALUE);
        return this.#fail(c, i);
      case ITEM:
        if (isWhitespace(c)) return;
        if (c === QUOTE) return this.#startString();
        return this.#fail(c, i);
      case COMMA_OR_END:
        if (isWhitespace(c)) return;
        if (c === 0x2c) return void (this.#state = ITEM);
        if (c === 0x5d) return void (this.#state = AFTER_VALUE);
        return this.#fail(c, i);
      case STRING:
        // Only a quote or a backslash gets here (push() copies the rest).
        if (c === BACKSLASH) return void (this.#state = ESCAPE);
        this.#flush(true);
        this.#suggestions.push(this.#current);
        this.#state = COMMA_OR_END;
        return;
      case ESCAPE:
        return this.#escape(c, i);
      case UNICODE: {
        const digit = hexValue(c);
        if (digit < 0) return this.#fail(c, i);
        this.#unicode = this.#unicode * 16 + digit;
        if (++this.#unicodeDigits === 4) {
          this.#pending += String.fromCharCode(this.#unicode);
          this.#state = STRING;
        }
        return;
      }
      case AFTER_VALUE:
        if (isWhitespace(c)) return;
        if (c === 0x2c) return void (this.#state = NEXT_KEY);
        if (c === 0x7d) return void (this.#state = DONE);
        return this.#fail(c, i);
      case SKIP_VALUE:
        return this.#skip(c, i);
      default:
        // DONE: a closing fence or trailing whitespace.
        return;
    }
  }

  #startKey(): void {
    this.#state = KEY;
    this.#key = '';
    this.#isKeyEscape = false;
  }

  #startString(): void {
    this.#state = STRING;
    this.#current = '';
  }

  #escape(c: number, i: number): void {
    this.#state = STRING;
    switch (c) {
      case 0x6e: this.#pending += '\n'; return; // n
      case 0x74: this.#pending += '\t'; return; // t
      case 0x72: this.#pending += '\r'; return; // r
      case 0x62: this.#pending += '\b'; return; // b
      case 0x66: this.#pending += '\f'; return; // f
      case QUOTE: this.#pending += '"'; return;
      case BACKSLASH: this.#pending += '\\'; return;
      case 0x2f: this.#pending += '/'; return;
      case 0x75: // u
        this.#state = UNICODE;
        this.#unicode = 0;
        this.#unicodeDigits = 0;
        return;
      default:
        this.#fail(c, i);
    }
  }

  /** Skips one JSON value of any shape; `,` or `}` at depth 0 ends a bare number or literal. */
  #skip(c: number, i: number): void {
    if (this.#isSkipInString) {
      if (this.#isSkipEscape) this.#isSkipEscape = false;
      else if (c === BACKSLASH) this.#isSkipEscape = true;
      else if (c === QUOTE) {
        this.#isSkipInString = false;
        if (this.#skipDepth === 0) this.#state = AFTER_VALUE;
      }
      return;
    }
    if (c === QUOTE) {
      this.#isSkipInString = true;
      this.#isSkipStarted = true;
    } else if (c === 0x7b || c === 0x5b) {
      this.#skipDepth++;
      this.#isSkipStarted = true;
    } else if (c === 0x7d || c === 0x5d) {
      if (this.#skipDepth === 0) {
        if (!this.#isSkipStarted) return this.#fail(c, i);
        this.#state = AFTER_VALUE;
        return this.#step(c, i);
      }
      if (--this.#skipDepth === 0) this.#state = AFTER_VALUE;
    } else if (isWhitespace(c) || c === 0x2c) {
      if (this.#isSkipStarted && this.#skipDepth === 0) {
        this.#state = AFTER_VALUE;
        return this.#step(c, i);
      }
      if (!this.#isSkipStarted && c === 0x2c) return this.#fail(c, i);
    } else {
      this.#isSkipStarted = true;
    }
  }

  /** Hands decoded text to onDelta; keeps a trailing high surrogate back unless the string ended. */
  #flush(isStringEnd: boolean): void {
    let text = this.#held + this.#pending;
    this.#pending = '';
    this.#held = '';
    if (!isStringEnd && text.length > 0 && isHighSurrogate(text.charCodeAt(text.length - 1))) {
      this.#held = text.slice(-1);
      text = text.slice(0, -1);
    }
    if (text.length === 0) return;
    this.#current += text;
    this.#onDelta(this.#suggestions.length, text);
  }

  #fail(c: number, i: number): never {
    throw new LlmServiceError('model output is not the expected suggestions JSON', {
      details: `unexpected ${JSON.stringify(String.fromCharCode(c))} at character ${this.#offset + i} (${STATE_NAMES[this.#state]})`,
    });
  }
}
