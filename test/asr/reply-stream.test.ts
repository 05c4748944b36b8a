// Reply-per-frame streams through the real engine (worker threads, real libvosk, tone model): every
// frame is answered by exactly the JSON libvosk gives when driven directly, in order.
import t from 'tap';
import type { VoxgateError } from '../../src/errors.js';
import type { ReplyPerFrameOptions } from '../../src/stt/engine.js';
import type { VoskEngine } from '../../src/stt/vosk/engine.js';
import type { VoskStream } from '../../src/stt/vosk/stream.js';
import { SpeakerModel } from '../../src/stt/vosk/speaker-model.js';
import { writeSpeakerModel, writeToneModel } from '../../src/vosk-model/tone-model.js';
import { startEngine, toneModel, tones } from '../stt/vosk-fixture.js';
import { frames, referenceReplies, type ReferenceMessage } from './libvosk-reference.js';

const WORDS = ['alpha', 'charlie', 'bravo'];

interface ReplyRecorder {
  stream: VoskStream;
  replies: string[];
  errors: VoxgateError[];
  /** Resolves when `count` replies came. */
  whenReplies(count: number): Promise<void>;
}

function openReplyStream(engine: VoskEngine, streamId: string, options: Partial<Omit<ReplyPerFrameOptions, 'onReply'>> = {}, sampleRate = 16000): ReplyRecorder {
  const replies: string[] = [];
  const errors: VoxgateError[] = [];
  let waiter: { count: number; resolve: () => void } | null = null;
  const stream = engine.openStream({
    streamId,
    sampleRate,
    onPartial: () => {},
    onSegment: () => {},
    onError: (err) => errors.push(err),
    replyPerFrame: {
      words: options.words ?? true,
      partialWords: options.partialWords ?? false,
      maxAlternatives: options.maxAlternatives ?? 0,
      phraseList: options.phraseList ?? null,
      speakerModelAddress: options.speakerModelAddress ?? null,
      onReply: (json) => {
        replies.push(json);
        if (waiter !== null && replies.length >= waiter.count) waiter.resolve();
      },
    },
  }) as VoskStream;
  return {
    stream,
    replies,
    errors,
    whenReplies: (count) =>
      replies.length >= count ? Promise.resolve() : new Promise<void>((resolve) => (waiter = { count, resolve })),
  };
}

/** Sends each message as a lockstep client does: write one frame, wait for its reply. */
async function lockstep(recorder: ReplyRecorder, messages: readonly ReferenceMessage[]): Promise<void> {
  for (const message of messages) {
    const before = recorder.replies.length;
    if (message === 'eof') {
      await recorder.stream.finish();
      return;
    }
    if (message === 'reset') recorder.stream.reset();
    else {
      recorder.stream.write(message);
      recorder.stream.endFrame();
    }
    await recorder.whenReplies(before + 1);
  }
}

t.test('reply-per-frame streams answer like libvosk itself', async (t) => {
  const modelPath = await toneModel(t);
  const engine = await startEngine(t, { modelPath, workers: 2 });
  const audio = tones(WORDS);

  for (const frameBytes of [3200, 8000, 640]) {
    t.test(`lockstep ${frameBytes}-byte frames then eof: the same JSON per frame`, async (t) => {
      const messages: ReferenceMessage[] = [...frames(audio, frameBytes), 'eof'];
      const expected = referenceReplies(modelPath, { sampleRate: 16000 }, messages);
      const recorder = openReplyStream(engine, `lockstep-${frameBytes}`);
      await lockstep(recorder, messages);
      t.equal(recorder.replies.length, messages.length, 'one reply per frame, and one for eof');
      t.same(recorder.replies, expected);
      t.match(recorder.replies.join('\n'), /"text" : "alpha charlie bravo"/);
      t.same(recorder.errors, []);
    });
  }

  t.test('fire-and-forget: every frame written at once still gets its own reply, in order', async (t) => {
    const messages: ReferenceMessage[] = [...frames(audio, 8000), 'eof'];
    const expected = referenceReplies(modelPath, { sampleRate: 16000 }, messages);
    const recorder = openReplyStream(engine, 'burst');
    for (const message of messages) {
      if (typeof message === 'string') break;
      recorder.stream.write(message);
      recorder.stream.endFrame();
    }
    await recorder.stream.finish();
    t.same(recorder.replies, expected);
  });

  t.test('reset answers with the final result so far and the stream goes on', async (t) => {
    const first = frames(tones(['alpha'], { tailMs: 100 }), 3200);
    const second = frames(tones(['bravo']), 3200);
    const messages: ReferenceMessage[] = [...first, 'reset', ...second, 'eof'];
    const expected = referenceReplies(modelPath, { sampleRate: 16000 }, messages);
    const recorder = openReplyStream(engine, 'reset');
    await lockstep(recorder, messages);
    t.same(recorder.replies, expected);
    t.match(recorder.replies[first.length], /"text" : "alpha"/);
  });

  t.test('words off, partial words and alternatives are set as asked', async (t) => {
    const messages: ReferenceMessage[] = [...frames(audio, 8000), 'eof'];
    for (const config of [{ words: false }, { words: true, partialWords: true }, { words: false, maxAlternatives: 3 }]) {
      const expected = referenceReplies(modelPath, { sampleRate: 16000, ...config }, messages);
      const recorder = openReplyStream(engine, `config-${JSON.stringify(config)}`, config);
      await lockstep(recorder, messages);
      t.same(recorder.replies, expected, JSON.stringify(config));
    }
    const alternatives = openReplyStream(engine, 'alternatives', { maxAlternatives: 3 });
    await lockstep(alternatives, messages);
    t.ok(alternatives.replies.some((json) => 'alternatives' in (JSON.parse(json) as object)), 'results carry alternatives');
  });

  t.test('a speaker model adds spk and spk_frames to results, as libvosk does', async (t) => {
    const speakerPath = t.testdir();
    await writeSpeakerModel(speakerPath);
    const speakerModel = SpeakerModel.load(speakerPath);
    const messages: ReferenceMessage[] = [...frames(audio, 8000), 'eof'];
    const expected = referenceReplies(modelPath, { sampleRate: 16000, speakerModelPath: speakerPath }, messages);
    const recorder = openReplyStream(engine, 'speaker', { speakerModelAddress: speakerModel.address });
    await lockstep(recorder, messages);
    // The stream's recogniser is freed with its final result: the speaker model may go now.
    speakerModel.release();
    t.same(recorder.replies, expected);
    const result = recorder.replies.map((json) => JSON.parse(json) as { spk?: number[]; spk_frames?: number }).find((reply) => reply.spk !== undefined);
    t.equal(result?.spk?.length, 8, 'an 8-dimensional speaker vector');
    t.ok((result?.spk_frames ?? 0) > 0);
  });

  t.test('8 kHz audio into the 16 kHz model is raised first and decodes exactly', async (t) => {
    const recorder = openReplyStream(engine, 'telephone', {}, 8000);
    const messages: ReferenceMessage[] = [...frames(tones(WORDS, { sampleRateHz: 8000 }), 320), 'eof'];
    await lockstep(recorder, messages);
    const texts = recorder.replies.map((json) => (JSON.parse(json) as { text?: string }).text).filter((text) => text !== undefined && text !== '');
    t.same(texts, ['alpha charlie bravo']);
    t.equal(recorder.replies.length, messages.length);
  });
});

t.test('a phrase list makes a grammar recogniser', async (t) => {
  const modelPath = t.testdir();
  await writeToneModel(modelPath, { grammar: true });
  const engine = await startEngine(t, { modelPath, workers: 1 });
  const messages: ReferenceMessage[] = [...frames(tones(WORDS), 8000), 'eof'];
  for (const phraseList of [['alpha', 'bravo'], ['alpha', 'bravo', '[unk]']]) {
    const expected = referenceReplies(modelPath, { sampleRate: 16000, phraseList }, messages);
    const recorder = openReplyStream(engine, `grammar-${phraseList.length}`, { phraseList });
    await lockstep(recorder, messages);
    t.same(recorder.replies, expected, JSON.stringify(phraseList));
  }
  const unk = openReplyStream(engine, 'grammar-check', { phraseList: ['alpha', 'bravo', '[unk]'] });
  await lockstep(unk, messages);
  const texts = unk.replies.map((json) => (JSON.parse(json) as { text?: string }).text).filter((text) => text !== undefined && text !== '');
  t.same(texts.join(' '), 'alpha [unk] bravo');
});
