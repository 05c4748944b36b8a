// What a client may say about its audio, and what voxgate makes of it. voxgate decodes one encoding:
// signed 16-bit little-endian mono PCM (what the app records and sends: `format: "pcm16"`,
// `sample_rate: 16000`, `channels: 1` on every audio_stream), at any rate the engine supports. Anything
// else is refused with AUDIO_FORMAT_UNSUPPORTED rather than decoded as noise into wrong text. A WAV
// header at the start of a recording is read and skipped (parseWavHeader).
import { AudioFormatError } from '../errors.js';
import { isSupportedSampleRate, MAX_SAMPLE_RATE_HZ, MIN_SAMPLE_RATE_HZ } from './engine.js';

/** The optional fields of message_start (extension) and audio_stream (the app's extras), as received. */
export interface AudioFormatDeclaration {
  format?: unknown;
  sample_rate?: unknown;
  channels?: unknown;
}

/** Names clients use for raw 16-bit little-endian PCM (lower case). `wav`: the same, a header is skipped. */
const PCM16_FORMAT_NAMES = new Set(['pcm16', 'pcm', 'pcm_s16le', 's16le', 'pcm16le', 'linear16', 'l16', 'audio/l16', 'raw', 'wav', 'wave', 'audio/wav']);

const EXPECTED_FORMAT = '16-bit little-endian PCM ("pcm16") or WAV';

/**
 * The sample rate a declaration states (Hz), or null when it states none. Throws AudioFormatError when
 * it declares something voxgate cannot decode. Absent and null fields declare nothing.
 */
export function declaredSampleRate(declaration: AudioFormatDeclaration): number | null {
  const { format } = declaration;
  const sampleRate = numeric(declaration.sample_rate);
  const channels = numeric(declaration.channels);
  if (format !== undefined && format !== null) {
    if (typeof format !== 'string' || !PCM16_FORMAT_NAMES.has(format.trim().toLowerCase())) {
      throw refusal(`audio format ${describe(format)} cannot be decoded`, `format: expected ${EXPECTED_FORMAT}`);
    }
  }
  if (channels !== undefined && channels !== null && channels !== 1) {
    throw refusal(`${describe(channels)} audio channels cannot be decoded`, 'channels: expected 1 (mono)');
  }
  if (sampleRate === undefined || sampleRate === null) return null;
  if (typeof sampleRate !== 'number' || !isSupportedSampleRate(sampleRate)) {
    throw refusal(`sample rate ${describe(sampleRate)} cannot be decoded`, `sample_rate: expected an integer ${MIN_SAMPLE_RATE_HZ}..${MAX_SAMPLE_RATE_HZ}`);
  }
  return sampleRate;
}

/**
 * A number written as a JSON string (`"16000"`, `" 1 "`) is read as that number: clients of the replaced
 * backend, which ignored these fields, send them either way. Anything else is returned as it came.
 */
function numeric(value: unknown): unknown {
  if (typeof value !== 'string' || !/^\s*\d+(\.0+)?\s*$/.test(value)) return value;
  return Number(value);
}

/** The facts of a WAV header voxgate needs, and where the samples start. */
export interface WavHeader {
  sampleRateHz: number;
  /** Bytes before the first sample (the header, skipped). */
  dataOffset: number;
}

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

/**
 * Reads a RIFF/WAVE header at the start of `bytes`: null when they do not start with one (raw PCM), the
 * header when it describes 16-bit mono PCM at a supported rate. Throws AudioFormatError for any other WAV
 * (float, 8/24-bit, stereo, compressed) or a header that does not end within `bytes` (the header must
 * arrive whole, in the first chunk of the recording).
 */
export function parseWavHeader(bytes: Uint8Array): WavHeader | null {
  if (bytes.byteLength < 12 || ascii(bytes, 0) !== 'RIFF' || ascii(bytes, 8) !== 'WAVE') return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let fmt: { encoding: number; channels: number; sampleRateHz: number; bitsPerSample: number } | null = null;
  let at = 12;
  while (at + 8 <= bytes.byteLength) {
    const id = ascii(bytes, at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'data') {
      if (fmt === null) throw refusal('WAV data before its fmt chunk', 'wav: expected a fmt chunk before data');
      checkWavFormat(fmt);
      return { sampleRateHz: fmt.sampleRateHz, dataOffset: body };
    }
    if (id === 'fmt ') {
      if (size < 16 || body + size > bytes.byteLength) break;
      let encoding = view.getUint16(body, true);
      // WAVE_FORMAT_EXTENSIBLE names the real encoding in the first two bytes of its sub-format GUID.
      if (encoding === WAVE_FORMAT_EXTENSIBLE && size >= 26) encoding = view.getUint16(body + 24, true);
      fmt = {
        encoding,
        channels: view.getUint16(body + 2, true),
        sampleRateHz: view.getUint32(body + 4, true),
        bitsPerSample: view.getUint16(body + 14, true),
      };
    }
    // Chunks are padded to an even size.
    at = body + size + (size % 2);
  }
  throw refusal('the WAV header does not end within the first audio chunk', 'wav: send the whole header (up to the data chunk) in the first chunk');
}

function checkWavFormat(fmt: { encoding: number; channels: number; sampleRateHz: number; bitsPerSample: number }): void {
  if (fmt.encoding !== WAVE_FORMAT_PCM || fmt.bitsPerSample !== 16) {
    throw refusal(`WAV with encoding ${fmt.encoding} and ${fmt.bitsPerSample}-bit samples cannot be decoded`, 'wav: expected 16-bit PCM (encoding 1)');
  }
  if (fmt.channels !== 1) throw refusal(`WAV with ${fmt.channels} channels cannot be decoded`, 'wav: expected 1 channel (mono)');
  if (!isSupportedSampleRate(fmt.sampleRateHz)) {
    throw refusal(`WAV at ${fmt.sampleRateHz} Hz cannot be decoded`, `wav: expected a sample rate ${MIN_SAMPLE_RATE_HZ}..${MAX_SAMPLE_RATE_HZ}`);
  }
}

/** A client value for a message: short, and never a walk of a (possibly deeply nested) structure. */
function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return Array.isArray(value) ? 'an array' : `a${typeof value === 'object' ? 'n object' : ` ${typeof value}`}`;
}

function ascii(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!);
}

function refusal(message: string, details: string): AudioFormatError {
  return new AudioFormatError(message, { details });
}
