// The disposable half of checkModel: loads a model with the real libvosk, decodes test audio and prints
// one JSON report line. It runs in its own process because a broken model can make libvosk abort or
// segfault during decoding, which no JavaScript catch survives; the parent reads the exit signal.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import vosk from 'vosk-koffi';

import { CheckRequestSchema, type CheckReport, type CheckRequest } from './check-messages.js';
import { readToneTable, synthesizeToneAudio } from './tone-audio.js';

/** 100 ms of 16-bit audio at 16 kHz, the chunk size a live stream delivers. */
const CHUNK_MS = 100;
/** Models without tones.json get silence and a 1 kHz tone: enough to run the whole pipeline. */
const PROBE_TONE_HZ = 1000;

interface TestSignal {
  pcm: Buffer;
  expectedText: string | null;
}

async function testSignal(request: CheckRequest): Promise<TestSignal> {
  if (!existsSync(join(request.modelDir, 'tones.json'))) {
    const pcm = synthesizeToneAudio(['probe'], {
      frequenciesHz: new Map([['probe', PROBE_TONE_HZ]]),
      sampleRateHz: request.sampleRateHz,
    });
    return { pcm, expectedText: null };
  }
  const table = await readToneTable(request.modelDir);
  const words = request.words ?? [...table.frequenciesHz.keys()];
  const pcm = synthesizeToneAudio(words, { frequenciesHz: table.frequenciesHz, sampleRateHz: request.sampleRateHz });
  return { pcm, expectedText: request.expectedText ?? words.join(' ') };
}

function resultText(json: string | null): string {
  if (json === null) return '';
  const parsed: unknown = JSON.parse(json);
  const text = typeof parsed === 'object' && parsed !== null ? Reflect.get(parsed, 'text') : undefined;
  return typeof text === 'string' ? text : '';
}

async function check(request: CheckRequest): Promise<CheckReport> {
  const { libvosk } = vosk;
  // Level 0 prints libvosk's errors to stderr, where the parent picks up the last lines as the reason.
  libvosk.vosk_set_log_level(0);
  const signal = await testSignal(request);

  const loadStart = performance.now();
  const model: unknown = libvosk.vosk_model_new(request.modelDir);
  const loadMs = performance.now() - loadStart;
  if (model === null) return { ok: false, stage: 'load', reason: 'libvosk could not load the model' };

  const recognizerStart = performance.now();
  const recognizer: unknown =
    request.grammar === null
      ? libvosk.vosk_recognizer_new(model, request.sampleRateHz)
      : libvosk.vosk_recognizer_new_grm(model, request.sampleRateHz, JSON.stringify(request.grammar));
  const recognizerMs = performance.now() - recognizerStart;
  if (recognizer === null) {
    libvosk.vosk_model_free(model);
    return { ok: false, stage: 'recognizer', reason: 'libvosk could not create a recogniser for the model' };
  }

  const chunkBytes = 2 * Math.round((request.sampleRateHz * CHUNK_MS) / 1000);
  const texts: string[] = [];
  const decodeStart = performance.now();
  for (let offset = 0; offset < signal.pcm.length; offset += chunkBytes) {
    const chunk = signal.pcm.subarray(offset, offset + chunkBytes);
    if (libvosk.vosk_recognizer_accept_waveform(recognizer, chunk, chunk.length) === 1) {
      texts.push(resultText(libvosk.vosk_recognizer_result(recognizer)));
    } else {
      libvosk.vosk_recognizer_partial_result(recognizer);
    }
  }
  texts.push(resultText(libvosk.vosk_recognizer_final_result(recognizer)));
  const decodeMs = performance.now() - decodeStart;
  libvosk.vosk_recognizer_free(recognizer);
  libvosk.vosk_model_free(model);

  const text = texts.filter((t) => t !== '').join(' ');
  if (signal.expectedText !== null && text !== signal.expectedText) {
    return {
      ok: false,
      stage: 'text',
      reason: `decoded ${JSON.stringify(text)}, expected ${JSON.stringify(signal.expectedText)}`,
    };
  }
  return {
    ok: true,
    loadMs,
    recognizerMs,
    decodeMs,
    audioSeconds: signal.pcm.length / 2 / request.sampleRateHz,
    text,
    hasToneTable: signal.expectedText !== null,
  };
}

const request = CheckRequestSchema.parse(JSON.parse(process.argv[2] ?? 'null'));
const report = await check(request);
process.stdout.write(`${JSON.stringify(report)}\n`);
