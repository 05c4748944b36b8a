// Loads a Vosk model once per process, on the main thread, and shares the native `VoskModel *` with every
// worker by address. A Vosk model is read-only after loading and safe to use from many threads; only a
// recogniser is single-threaded. Sharing it means memory does not grow with the number of workers.
//
// The registry is process-wide (keyed by resolved path) and reference-counted: two engines on the same
// model share one load. The model is freed when the last holder releases it, which the engine does only
// after every recogniser made from it was freed (pool destroyed, local decoder closed).
import { resolve } from 'node:path';
import koffi from 'koffi';
import vosk from 'vosk-koffi';
import { ModelInvalidError } from '../../errors.js';

interface LoadedModel {
  handle: unknown;
  address: bigint;
  holders: number;
}

const loadedModels = new Map<string, LoadedModel>();
let modelLoads = 0;

/** How many times this process called vosk_model_new (tests prove "once" with it). */
export function modelLoadCount(): number {
  return modelLoads;
}

/** libvosk's process-wide log level: -1 silent, 0 errors and info, higher is more verbose. */
export function setVoskLogLevel(level: number): void {
  vosk.libvosk.vosk_set_log_level(level);
}

/** One holder's claim on a loaded model. */
export class SharedVoskModel {
  readonly path: string;
  /** The native `VoskModel *` as an address, for workerData (koffi accepts it as a pointer argument). */
  readonly address: bigint;
  #isReleased = false;

  private constructor(path: string, address: bigint) {
    this.path = path;
    this.address = address;
  }

  /** Loads the model at `modelPath`, or joins the load already in this process. */
  static acquire(modelPath: string): SharedVoskModel {
    const path = resolve(modelPath);
    let loaded = loadedModels.get(path);
    if (loaded === undefined) {
      modelLoads += 1;
      const handle: unknown = vosk.libvosk.vosk_model_new(path);
      if (handle === null || handle === undefined) {
        throw new ModelInvalidError(`libvosk could not load the model at ${path}`, { details: path });
      }
      loaded = { handle, address: koffi.address(handle), holders: 0 };
      loadedModels.set(path, loaded);
    }
    loaded.holders += 1;
    return new SharedVoskModel(path, loaded.address);
  }

  /**
   * Gives up this claim; the last one frees the native model. Call only when no recogniser made from it
   * is alive. Idempotent.
   */
  release(): void {
    if (this.#isReleased) return;
    this.#isReleased = true;
    const loaded = loadedModels.get(this.path);
    if (loaded === undefined) return;
    loaded.holders -= 1;
    if (loaded.holders === 0) {
      loadedModels.delete(this.path);
      vosk.libvosk.vosk_model_free(loaded.handle);
    }
  }
}
