// Every error voxgate reports has a stable `code`. Codes that reach a client are protocol error codes
// (docs/errors.md lists them; test/errors.test.ts keeps that list and this file in step). Errors from
// libraries (undici, Piscina, libvosk, SQLite) are wrapped at the boundary with the original as `cause`.
//
// Each class also declares its `userMessage`: the short Chinese sentence a client shows to the person
// (the app renders `错误: <message>` as a toast, as it did with the replaced backend's messages). It is
// declared next to the code, once per class, so a new error class cannot be added without one (the
// compiler requires it; test/errors.test.ts checks it is Chinese and documented). The English `message`
// is for operators and logs; clients get it in `details` (protocol/server-events.ts errorEvent).

export interface VoxgateErrorOptions {
  details?: string | null;
  cause?: unknown;
}

export abstract class VoxgateError extends Error {
  abstract readonly code: string;
  /** What the person using the app reads: one short Chinese sentence, the same for every error of this code. */
  abstract readonly userMessage: string;
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
  readonly userMessage = '服务器配置有误';
}

export class NativeTransportMissingError extends VoxgateError {
  readonly code = 'NATIVE_TRANSPORT_MISSING';
  readonly userMessage = '服务器缺少网络组件';
}

export class ModelInvalidError extends VoxgateError {
  readonly code = 'MODEL_INVALID';
  readonly userMessage = '语音识别模型不可用';
}

/** A model archive could not be fetched (network error or HTTP status); retrying may help. */
export class ModelDownloadError extends VoxgateError {
  readonly code = 'MODEL_DOWNLOAD_FAILED';
  readonly userMessage = '语音识别模型下载失败';
  override readonly retryable: boolean;

  constructor(message: string, options: VoxgateErrorOptions & { retryable: boolean }) {
    super(message, options);
    this.retryable = options.retryable;
  }
}

// --- Protocol (sent to clients as `error` events) --------------------------------------------------

export class InvalidEventDataError extends VoxgateError {
  readonly code = 'INVALID_EVENT_DATA';
  readonly userMessage = '事件数据验证失败';
}

export class InvalidEventTypeError extends VoxgateError {
  readonly code = 'INVALID_EVENT_TYPE';
  readonly userMessage = '未知的事件类型';
}

export class MissingRequiredFieldError extends VoxgateError {
  readonly code = 'MISSING_REQUIRED_FIELD';
  readonly userMessage = '缺少必填字段';
}

export class SessionNotFoundError extends VoxgateError {
  readonly code = 'SESSION_NOT_FOUND';
  readonly userMessage = '会话不存在';
}

export class NotRecordingError extends VoxgateError {
  readonly code = 'NOT_RECORDING';
  readonly userMessage = '当前没有在录音';
}

export class AudioLimitExceededError extends VoxgateError {
  readonly code = 'AUDIO_LIMIT_EXCEEDED';
  readonly userMessage = '录音已达长度上限';
}

export class SessionLimitExceededError extends VoxgateError {
  readonly code = 'SESSION_LIMIT_EXCEEDED';
  readonly userMessage = '会话数量已达上限';
}

export class RateLimitedError extends VoxgateError {
  readonly code = 'RATE_LIMITED';
  readonly userMessage = '操作太频繁，请稍后再试';
}

export class ServerShuttingDownError extends VoxgateError {
  readonly code = 'SERVER_SHUTTING_DOWN';
  readonly userMessage = '服务器正在重启，请稍后再试';
}

export class RecordingInProgressError extends VoxgateError {
  readonly code = 'RECORDING_IN_PROGRESS';
  readonly userMessage = '正在录音中';
}

/** The reason given to an AbortController when a request is superseded or cancelled; never sent. */
export class RequestCancelledError extends VoxgateError {
  readonly code = 'REQUEST_CANCELLED';
  readonly userMessage = '请求已取消';
}

export class InternalError extends VoxgateError {
  readonly code = 'INTERNAL_ERROR';
  readonly userMessage = '服务器内部错误';
}

// --- Speech recognition ---------------------------------------------------------------------------

export class SttServiceError extends VoxgateError {
  readonly code = 'STT_SERVICE_ERROR';
  readonly userMessage = '语音识别失败';
}

export class SttBusyError extends VoxgateError {
  readonly code = 'STT_SERVICE_BUSY';
  readonly userMessage = '语音识别繁忙，请稍后再试';
  override readonly retryable = true;
}

/** Audio declared (or found, in a WAV header) in a format voxgate cannot decode; `details` says what and why. */
export class AudioFormatError extends VoxgateError {
  readonly code = 'AUDIO_FORMAT_UNSUPPORTED';
  readonly userMessage = '不支持的音频格式';
}

// --- LLM ------------------------------------------------------------------------------------------

export interface LlmErrorOptions extends VoxgateErrorOptions {
  retryable?: boolean;
  /** Seconds the upstream asked us to wait (Retry-After), if it said. */
  retryAfterSeconds?: number | null;
}

export class LlmServiceError extends VoxgateError {
  readonly code = 'LLM_SERVICE_ERROR';
  readonly userMessage = '生成回答建议失败';
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
  readonly userMessage = '回答建议服务繁忙，请稍后再试';
}

export class ServiceTimeoutError extends VoxgateError {
  readonly code = 'SERVICE_TIMEOUT';
  readonly userMessage = '服务响应超时';
}

export class SlowConsumerError extends VoxgateError {
  readonly code = 'SLOW_CONSUMER';
  readonly userMessage = '网络太慢，数据未能送达';
}

// --- Storage --------------------------------------------------------------------------------------

export class StoreError extends VoxgateError {
  readonly code = 'STORAGE_ERROR';
  readonly userMessage = '保存失败，请重试';
}

/**
 * The shared session store (Redis) cannot be reached: nothing was stored. New sessions are refused with
 * it; a live recording keeps its text in memory and its next write tries again (docs/scaling.md).
 */
export class StoreUnavailableError extends VoxgateError {
  readonly code = 'STORE_UNAVAILABLE';
  readonly userMessage = '会话存储暂不可用，请稍后再试';
  override readonly retryable = true;
}

/**
 * Another node now serves this session (it took the lease: a handover, or this node was paused past its
 * lease). This node's write was refused by the fencing epoch and its connections are detached; the
 * client resumes the session where its reconnect lands (docs/scaling.md).
 */
export class SessionMovedError extends VoxgateError {
  readonly code = 'SESSION_MOVED';
  readonly userMessage = '会话已转到其他服务器，正在重连';
  override readonly retryable = true;
}

/** Another live node holds the session and did not hand it over in time; retrying may succeed. */
export class SessionBusyElsewhereError extends VoxgateError {
  readonly code = 'SESSION_BUSY_ELSEWHERE';
  readonly userMessage = '会话正在其他服务器上使用';
  override readonly retryable = true;
}

// --- Capacity --------------------------------------------------------------------------------------

/** MAX_SESSIONS_PER_ADDRESS: one client address has this many sessions already. */
export class AddressSessionLimitError extends VoxgateError {
  readonly code = 'ADDRESS_SESSION_LIMIT';
  readonly userMessage = '此网络地址的会话过多';
}

/**
 * A per-owner or per-address quota (QUOTA_*, or a JWT's grants) is reached; `details` names the quota,
 * its limit and when to retry: `quota: generations_per_minute; limit: 60; retry_after_seconds: 12`.
 */
export class QuotaExceededError extends VoxgateError {
  readonly code = 'QUOTA_EXCEEDED';
  readonly userMessage = '使用次数已达上限，请稍后再试';
  override readonly retryable = true;
}

/** MAX_SESSIONS or SESSION_MEMORY_MAX_MB: the process holds as many sessions as it may; try later or elsewhere. */
export class SessionCapacityError extends VoxgateError {
  readonly code = 'SESSION_CAPACITY_EXCEEDED';
  readonly userMessage = '服务器会话已满，请稍后再试';
  override readonly retryable = true;
}

/** Narrows an unknown thrown value to a VoxgateError, wrapping anything else as INTERNAL_ERROR. */
export function toVoxgateError(err: unknown): VoxgateError {
  if (err instanceof VoxgateError) return err;
  return new InternalError('unexpected internal error', { cause: err });
}
