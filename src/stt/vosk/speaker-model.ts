// The speaker (x-vector) model of VOSK_SPK_MODEL_PATH: loaded once per process on the main thread, like
// the acoustic model (model.ts), and shared with the worker threads by address: a recogniser it is set on
// adds `spk` and `spk_frames` to its results (vosk-server's behaviour with VOSK_SPK_MODEL_PATH). It is
// read-only after loading; free it only after every recogniser using it was freed (the engine closed).
import { resolve } from 'node:path';
import koffi from 'koffi';
import vosk from 'vosk-koffi';
import { ModelInvalidError } from '../../errors.js';

export class SpeakerModel {
  readonly path: string;
  /** The native `VoskSpkModel *` as an address (koffi accepts it as a pointer argument in any thread). */
  readonly address: bigint;
  readonly #handle: unknown;
  #isReleased = false;

  private constructor(path: string, handle: unknown) {
    this.path = path;
    this.#handle = handle;
    this.address = koffi.address(handle);
  }

  /** Loads the speaker model at `modelPath`; ModelInvalidError when libvosk cannot. */
  static load(modelPath: string): SpeakerModel {
    const path = resolve(modelPath);
    const handle: unknown = vosk.libvosk.vosk_spk_model_new(path);
    if (handle === null || handle === undefined) {
      throw new ModelInvalidError(`libvosk could not load the speaker model at ${path}`, { details: `VOSK_SPK_MODEL_PATH=${path}` });
    }
    return new SpeakerModel(path, handle);
  }

  /** Frees the native model. Only after every recogniser using it was freed. Idempotent. */
  release(): void {
    if (this.#isReleased) return;
    this.#isReleased = true;
    vosk.libvosk.vosk_spk_model_free(this.#handle);
  }
}
