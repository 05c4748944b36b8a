import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config/load.js';
import { ModelInvalidError } from '../errors.js';
import type { SttEngine } from './engine.js';
import { MockSttEngine } from './mock-engine.js';
import { VoskEngine } from './vosk/engine.js';

/**
 * Picks the speech engine: `vosk` insists on a working model (start-up fails with the model's problem),
 * `mock` never loads one, and `auto` uses Vosk when the model validates and otherwise falls back to the
 * mock engine, loudly (log and health).
 */
export async function createSttEngine(config: Config['stt'], logger: Logger): Promise<SttEngine> {
  const log = logger.child({ component: 'stt' });
  if (config.engine === 'mock') {
    log.warn('STT_ENGINE=mock: speech is not recognised; transcripts state the amount of audio received');
    return new MockSttEngine({ sampleRate: config.sampleRate, reason: 'STT_ENGINE=mock' });
  }
  if (config.engine === 'auto' && !existsSync(config.modelPath)) {
    const reason = `no Vosk model at ${config.modelPath} (see model/README.md)`;
    log.warn({ modelPath: config.modelPath }, `falling back to the mock STT engine: ${reason}`);
    return new MockSttEngine({ sampleRate: config.sampleRate, reason });
  }
  try {
    // The engine names its own component in its log lines.
    return await VoskEngine.create({
      modelPath: config.modelPath,
      sampleRate: config.sampleRate,
      workers: config.workers,
      targetFinishLatencyMs: config.targetFinishLatencyMs,
      logger,
    });
  } catch (err) {
    if (config.engine === 'vosk' || !(err instanceof ModelInvalidError)) throw err;
    const reason = `the Vosk model at ${config.modelPath} is unusable: ${err.message}`;
    log.warn({ err, modelPath: config.modelPath }, `falling back to the mock STT engine: ${reason}`);
    return new MockSttEngine({ sampleRate: config.sampleRate, reason });
  }
}
