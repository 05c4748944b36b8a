// Audio of the simulated users: per-user word sequences (seeded), their tone PCM, and a pacer that sends
// it in real time the way a phone records: a chunk goes out when the audio it holds has been "spoken".
import type WebSocket from 'ws';

import { mulberry32, synthesizeToneAudio } from '../../src/vosk-model/tone-audio.js';

export const BYTES_PER_MS = 32; // 16 kHz x 16-bit mono
const APP_CHUNK_BYTES = 32_000; // the app: 1 s per audio_stream event
const BINARY_FRAME_BYTES = 640; // 20 ms binary frames
const TICK_MS = 10;
const CACHE_MAX_ENTRIES = 512;

export interface Utterance {
  words: string[];
  expectedText: string;
  pcm: Buffer;
  /** The app's 1 s chunks, base64 (encoded once per utterance, not per send). */
  base64Chunks: string[];
}

/** Word sequences of one user: minWords..maxWords words, never the same word twice in a row (one tone). */
export class WordSource {
  readonly #random: () => number;
  readonly #vocabulary: string[];
  readonly #minWords: number;
  readonly #maxWords: number;

  constructor(seed: number, vocabulary: string[], minWords: number, maxWords: number) {
    this.#random = mulberry32(seed);
    this.#vocabulary = vocabulary;
    this.#minWords = minWords;
    this.#maxWords = maxWords;
  }

  next(): string[] {
    const count = this.#minWords + Math.floor(this.#random() * (this.#maxWords - this.#minWords + 1));
    const words: string[] = [];
    while (words.length < count) {
      const word = this.#vocabulary[Math.floor(this.#random() * this.#vocabulary.length)]!;
      if (word !== words.at(-1)) words.push(word);
    }
    return words;
  }
}

/** Synthesised utterances, shared by the users of one process (the same sequences recur often). */
export class UtteranceCache {
  readonly #frequenciesHz: ReadonlyMap<string, number>;
  readonly #entries = new Map<string, Utterance>();

  constructor(frequenciesHz: ReadonlyMap<string, number>) {
    this.#frequenciesHz = frequenciesHz;
  }

  get(words: string[]): Utterance {
    const key = words.join(' ');
    let utterance = this.#entries.get(key);
    if (utterance === undefined) {
      const pcm = synthesizeToneAudio(words, { frequenciesHz: this.#frequenciesHz });
      const base64Chunks: string[] = [];
      for (let offset = 0; offset < pcm.length; offset += APP_CHUNK_BYTES) {
        base64Chunks.push(pcm.subarray(offset, offset + APP_CHUNK_BYTES).toString('base64'));
      }
      utterance = { words, expectedText: key, pcm, base64Chunks };
      if (this.#entries.size >= CACHE_MAX_ENTRIES) this.#entries.delete(this.#entries.keys().next().value!);
      this.#entries.set(key, utterance);
    }
    return utterance;
  }
}

interface ActiveStream {
  socket: WebSocket;
  sessionId: string;
  utterance: Utterance;
  mode: 'base64' | 'binary';
  startedAt: number;
  sentBytes: number;
  done: () => void;
}

/**
 * One timer for every recording user of the process (not one per user and frame): every TICK_MS it sends
 * each stream the chunks whose audio has fully elapsed since the stream began.
 */
export class AudioPacer {
  readonly #streams = new Set<ActiveStream>();
  #timer: NodeJS.Timeout | null = null;
  readonly #onTick = (): void => {
    this.#tick();
  };

  /** Resolves once the last chunk is sent (or the socket closed). */
  play(socket: WebSocket, sessionId: string, utterance: Utterance, mode: 'base64' | 'binary'): Promise<void> {
    return new Promise((resolve) => {
      this.#streams.add({ socket, sessionId, utterance, mode, startedAt: performance.now(), sentBytes: 0, done: resolve });
      this.#timer ??= setInterval(this.#onTick, TICK_MS);
    });
  }

  #tick(): void {
    const now = performance.now();
    for (const stream of this.#streams) {
      const { socket, utterance } = stream;
      const total = utterance.pcm.length;
      if (socket.readyState !== socket.OPEN) {
        this.#end(stream);
        continue;
      }
      const spokenBytes = Math.min(total, Math.floor((now - stream.startedAt) * BYTES_PER_MS));
      const chunkBytes = stream.mode === 'base64' ? APP_CHUNK_BYTES : BINARY_FRAME_BYTES;
      // A chunk is due once all its audio is spoken; the last one may be short.
      while (stream.sentBytes < total && Math.min(stream.sentBytes + chunkBytes, total) <= spokenBytes) {
        const end = Math.min(stream.sentBytes + chunkBytes, total);
        if (stream.mode === 'base64') {
          const chunk = utterance.base64Chunks[stream.sentBytes / APP_CHUNK_BYTES]!;
          socket.send(`{"type":"audio_stream","data":{"session_id":"${stream.sessionId}","audio_chunk":"${chunk}"}}`);
        } else {
          socket.send(utterance.pcm.subarray(stream.sentBytes, end), { binary: true });
        }
        stream.sentBytes = end;
      }
      if (stream.sentBytes >= total) this.#end(stream);
    }
  }

  #end(stream: ActiveStream): void {
    this.#streams.delete(stream);
    stream.done();
    if (this.#streams.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }
}
