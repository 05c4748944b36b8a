// What libvosk itself answers to a sequence of vosk-server messages, computed in this thread with no
// voxgate code between: one recogniser, one accept call per binary frame, exactly as vosk-server's
// process_chunk does. Tests compare voxgate's replies with these, frame by frame.
import vosk from 'vosk-koffi';

const { libvosk } = vosk;

export interface ReferenceConfig {
  sampleRate: number;
  words?: boolean;
  partialWords?: boolean;
  maxAlternatives?: number;
  phraseList?: readonly string[] | null;
  /** A speaker model directory: results carry spk and spk_frames. */
  speakerModelPath?: string;
}

export type ReferenceMessage = Uint8Array | 'eof' | 'reset';

/** libvosk's reply to every message, in order (an eof ends the list). */
export function referenceReplies(modelPath: string, config: ReferenceConfig, messages: readonly ReferenceMessage[]): string[] {
  const model: unknown = libvosk.vosk_model_new(modelPath);
  if (model === null) throw new Error(`libvosk could not load ${modelPath}`);
  const phraseList = config.phraseList ?? null;
  const recognizer: unknown =
    phraseList === null
      ? libvosk.vosk_recognizer_new(model, config.sampleRate)
      : libvosk.vosk_recognizer_new_grm(model, config.sampleRate, JSON.stringify(phraseList));
  const speakerModel: unknown = config.speakerModelPath === undefined ? null : libvosk.vosk_spk_model_new(config.speakerModelPath);
  try {
    if (speakerModel !== null) libvosk.vosk_recognizer_set_spk_model(recognizer, speakerModel);
    libvosk.vosk_recognizer_set_words(recognizer, config.words === false ? 0 : 1);
    if (config.partialWords === true) libvosk.vosk_recognizer_set_partial_words(recognizer, 1);
    if ((config.maxAlternatives ?? 0) > 0) libvosk.vosk_recognizer_set_max_alternatives(recognizer, config.maxAlternatives);
    const replies: string[] = [];
    for (const message of messages) {
      if (message === 'eof') {
        replies.push(libvosk.vosk_recognizer_final_result(recognizer) as string);
        break;
      }
      if (message === 'reset') {
        replies.push(libvosk.vosk_recognizer_final_result(recognizer) as string);
        libvosk.vosk_recognizer_reset(recognizer);
        continue;
      }
      const isEndpoint = (libvosk.vosk_recognizer_accept_waveform(recognizer, message, message.byteLength) as number) === 1;
      replies.push((isEndpoint ? libvosk.vosk_recognizer_result(recognizer) : libvosk.vosk_recognizer_partial_result(recognizer)) as string);
    }
    return replies;
  } finally {
    libvosk.vosk_recognizer_free(recognizer);
    if (speakerModel !== null) libvosk.vosk_spk_model_free(speakerModel);
    libvosk.vosk_model_free(model);
  }
}

/** `pcm` cut into frames of `frameBytes` (the last one shorter). */
export function frames(pcm: Uint8Array, frameBytes: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let offset = 0; offset < pcm.byteLength; offset += frameBytes) out.push(pcm.subarray(offset, Math.min(pcm.byteLength, offset + frameBytes)));
  return out;
}
