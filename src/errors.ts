// Every error voxgate reports has a stable `code`. Codes that reach a client are protocol error codes
// (docs/errors.md lists them; test/errors.test.ts keeps that list and this file in step). Errors from
// libraries (undici, Piscina, libvosk, SQLite) are wrapped at the boundary with the original as `cause`.

export interface VoxgateErrorOptions {
  details?: string | null;
  cause?: unknown;
}

export abstract class VoxgateError extends Error {
  abstract readonly code: string;
  /** Whether the same operation may succeed if tried again (used by retry loops, never by clients). */
  readonly retryable: boolean = false;
  /** Machine-readable detail for the client's `error.details` (field paths, upstream codes). */
  readonly details: string | null;

  constructor(message: string, options: VoxgateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.details = options.details ?? null;
  }
}

// --- Configuration and start-up -------------------------------------------------------------------

export class ConfigError extends VoxgateError {
  readonly code = 'CONFIG_INVALID';
}

export class NativeTransportMissingError extends VoxgateError {
  readonly code = 'NATIVE_TRANSPORT_MISSING';
}

export class ModelInvalidError extends VoxgateError {
  readonly code = 'MODEL_INVALID';
}

/** A model archive could not be fetched (network error or HTTP status); retrying may help. */
export class ModelDownloadError extends VoxgateError {
  readonly code = 'MODEL_DOWNLOAD_FAILED';
  override readonly retryable: boolean;

  constructor(message: string, options: VoxgateErrorOptions & { retryable: boolean }) {
    super(message, options);
    this.retryable = options.retryable;
  }
}

// --- Protocol (sent to clients as `error` events) --------------------------------------------------

export class InvalidEventDataError extends VoxgateError {
  readonly code = 'INVALID_EVENT_DATA';
}

export class InvalidEventTypeError extends VoxgateError {
  readonly code = 'INVALID_EVENT_TYPE';
}

export class MissingRequiredFieldError extends VoxgateError {
  readonly code = 'MISSING_REQUIRED_FIELD';
}

export class SessionNotFoundError extends VoxgateError {
  readonly code = 'SESSION_NOT_FOUND';
}

export class NotRecordingError extends VoxgateError {
  readonly code = 'NOT_RECORDING';
}

export class AudioLimitExceededError extends VoxgateError {
  readonly code = 'AUDIO_LIMIT_EXCEEDED';
}

export class SessionLimitExceededError extends VoxgateError {
  readonly code = 'SESSION_LIMIT_EXCEEDED';
}

export class RateLimitedError extends VoxgateError {
  readonly code = 'RATE_LIMITED';
}

export class ServerShuttingDownError extends VoxgateError {
  readonly code = 'SERVER_SHUTTING_DOWN';
}

export class RecordingInProgressError extends VoxgateError {
  readonly code = 'RECORDING_IN_PROGRESS';
}

/** The reason given to an AbortController when a request is superseded or cancelled; never sent. */
export class RequestCancelledError extends VoxgateError {
  readonly code = 'REQUEST_CANCELLED';
}

export class InternalError extends VoxgateError {
  readonly code = 'INTERNAL_ERROR';
}

// --- Speech recognition ---------------------------------------------------------------------------

export class SttServiceError extends VoxgateError {
  readonly code = 'STT_SERVICE_ERROR';
}

export class SttBusyError extends VoxgateError {
  readonly code = 'STT_SERVICE_BUSY';
  override readonly retryable = true;
}

// --- LLM ------------------------------------------------------------------------------------------

export interface LlmErrorOptions extends VoxgateErrorOptions {
  retryable?: boolean;
  /** Seconds the upstream asked us to wait (Retry-After), if it said. */
  retryAfterSeconds?: number | null;
}

export class LlmServiceError extends VoxgateError {
  readonly code = 'LLM_SERVICE_ERROR';
  override readonly retryable: boolean;
  readonly retryAfterSeconds: number | null;

  constructor(message: string, options: LlmErrorOptions = {}) {
    super(message, options);
    this.retryable = options.retryable ?? false;
    this.retryAfterSeconds = options.retryAfterSeconds ?? null;
  }
}

export class LlmBusyError extends VoxgateError {
  readonly code = 'LLM_SERVICE_BUSY';
}

export class ServiceTimeoutError extends VoxgateError {
  readonly code = 'SERVICE_TIMEOUT';
}

export class SlowConsumerError extends VoxgateError {
  readonly code = 'SLOW_CONSUMER';
}

// --- Storage --------------------------------------------------------------------------------------

export class StoreError extends VoxgateError {
  readonly code = 'STORAGE_ERROR';
}

// --- Capacity --------------------------------------------------------------------------------------

/** MAX_SESSIONS_PER_ADDRESS: one client address has this many sessions already. */
export class AddressSessionLimitError extends VoxgateError {
  readonly code = 'ADDRESS_SESSION_LIMIT';
}

/** MAX_SESSIONS or SESSION_MEMORY_MAX_MB: the process holds as many sessions as it may; try later or elsewhere. */
export class SessionCapacityError extends VoxgateError {
  readonly code = 'SESSION_CAPACITY_EXCEEDED';
  override readonly retryable = true;
}

/** Narrows an unknown thrown value to a VoxgateError, wrapping anything else as INTERNAL_ERROR. */
export function toVoxgateError(err: unknown): VoxgateError {
  if (err instanceof VoxgateError) return err;
  return new InternalError('unexpected internal error', { cause: err });
}
