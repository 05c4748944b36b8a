// The text frames of vosk-server's WebSocket protocol (websocket/asr_server.py), parsed once at the edge.
// vosk-server looks for the substring `config` and compares eof/reset with one exact spelling; voxgate
// parses the JSON, so `{"eof":1}`, `{"eof" : 1}` and `{ "eof": 1 }` all end the stream.
import { z } from 'zod';
import { InvalidEventDataError } from '../errors.js';
import { MAX_SAMPLE_RATE_HZ, MIN_SAMPLE_RATE_HZ } from '../stt/engine.js';

/** Most phrases in a `phrase_list` (a grammar this large is a vocabulary, not a grammar). */
export const MAX_PHRASES = 1024;
/** Longest phrase, in characters. */
export const MAX_PHRASE_CHARS = 256;
/** Most alternatives a client may ask for (vosk-server's test_alternatives.py asks for 20; libvosk's n-best cost grows with it). */
export const MAX_ALTERNATIVES = 100;
/** Longest text frame worth parsing: a full phrase list fits many times. */
export const MAX_TEXT_FRAME_CHARS = 512 * 1024;

/** What a `{"config": {...}}` frame may set; absent fields keep the connection's defaults. */
const ConfigSchema = z.object({
  // vosk-server takes float(sample_rate); libvosk's rate is a float too, but voxgate's streams are whole Hz.
  sample_rate: z.number().int().min(MIN_SAMPLE_RATE_HZ).max(MAX_SAMPLE_RATE_HZ).optional(),
  words: z.union([z.boolean(), z.number()]).optional(),
  max_alternatives: z.number().int().min(0).max(MAX_ALTERNATIVES).optional(),
  phrase_list: z.array(z.string().max(MAX_PHRASE_CHARS)).max(MAX_PHRASES).optional(),
  model: z.string().min(1).max(256).optional(),
});

export interface AsrConfig {
  sampleRate?: number;
  words?: boolean;
  maxAlternatives?: number;
  phraseList?: readonly string[];
  model?: string;
}

export type AsrTextMessage =
  | { kind: 'config'; config: AsrConfig }
  | { kind: 'eof' }
  | { kind: 'reset' };

export type AsrTextParse = { ok: true; message: AsrTextMessage } | { ok: false; error: InvalidEventDataError };

function invalid(details: string): AsrTextParse {
  return { ok: false, error: new InvalidEventDataError('expected {"config": {...}}, {"eof": 1} or {"reset": 1}', { details }) };
}

/** Parses one text frame. Never throws. */
export function parseAsrText(text: string): AsrTextParse {
  if (text.length > MAX_TEXT_FRAME_CHARS) return invalid(`text frame longer than ${MAX_TEXT_FRAME_CHARS} characters`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    if (err instanceof SyntaxError) return invalid('not JSON');
    throw err;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return invalid('not a JSON object');
  const object = value as Record<string, unknown>;
  if ('config' in object) {
    const parsed = ConfigSchema.safeParse(object.config);
    if (!parsed.success) {
      return invalid(parsed.error.issues.map((issue) => `config.${issue.path.join('.')}: ${issue.message}`).join('; '));
    }
    const data = parsed.data;
    const config: AsrConfig = {};
    if (data.sample_rate !== undefined) config.sampleRate = data.sample_rate;
    // vosk-server applies bool(): 0 and false turn words off, anything else on.
    if (data.words !== undefined) config.words = Boolean(data.words);
    if (data.max_alternatives !== undefined) config.maxAlternatives = data.max_alternatives;
    if (data.phrase_list !== undefined) config.phraseList = Object.freeze([...data.phrase_list]);
    if (data.model !== undefined) config.model = data.model;
    return { ok: true, message: { kind: 'config', config } };
  }
  // vosk-server only knows the value 1; any other value is not an eof there either.
  if (object.eof === 1) return { ok: true, message: { kind: 'eof' } };
  if (object.reset === 1) return { ok: true, message: { kind: 'reset' } };
  return invalid('no config, eof or reset key');
}
