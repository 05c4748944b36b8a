import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { EnvSchema, type Env } from './schema.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** The validated, frozen settings. Only this module reads process.env; everything else gets a Config. */
export interface Config {
  readonly host: string;
  readonly port: number;
  readonly logLevel: LogLevel;
  readonly logFile: { readonly path: string; readonly maxSize: string; readonly keep: number } | null;
  /** `null` means any origin is allowed. */
  readonly allowedOrigins: readonly string[] | null;
  readonly allowFallbackTransport: boolean;
  /** Serve the browser demo page at /demo (src/demo/). */
  readonly demoEnabled: boolean;
  /** Take the client's address from the X-Forwarded-For of our own reverse proxy. */
  readonly trustProxy: boolean;
  /** TRUSTED_PROXIES: addresses and CIDR networks of proxies whose X-Forwarded-For is read. */
  readonly trustedProxies: readonly string[];
  readonly shutdownDrainMs: number;
  /** Credentials required at the upgrade when any is set (src/auth/). */
  readonly auth: {
    readonly apiKeys: readonly string[];
    readonly apiKeysFile: string | null;
    readonly jwtSecret: string | null;
    readonly jwksFile: string | null;
  };
  /** Per owner and per client address (src/quotas/). */
  readonly quotas: { readonly connections: number; readonly liveSessions: number; readonly recordings: number; readonly generationsPerMinute: number };
  /** GET /metrics: on the main port (null), or only on its own listener. */
  readonly metrics: { readonly listener: { readonly host: string; readonly port: number } | null };
  readonly llm: {
    /** `mock` when no API key is configured. */
    readonly engine: 'openrouter' | 'mock';
    readonly apiKey: string | null;
    readonly baseUrl: string;
    readonly model: string;
    readonly fallbackModels: readonly string[];
    readonly temperature: number;
    readonly maxTokens: number;
    readonly requestTimeoutMs: number;
    readonly idleTimeoutMs: number;
    readonly maxRetries: number;
    readonly referer: string;
    readonly title: string;
    readonly maxInFlight: number;
    readonly maxQueue: number;
    readonly mockDeltaDelayMs: number;
  };
  readonly stt: {
    readonly engine: 'auto' | 'vosk' | 'mock';
    readonly modelPath: string;
    readonly sampleRate: number;
    readonly workers: number;
    /** Final-text latency the learned stream limit keeps (ms). */
    readonly targetFinishLatencyMs: number;
  };
  /** The vosk-server-compatible endpoint (docs/asr.md). */
  readonly asr: {
    readonly enabled: boolean;
    /** Also answer WebSocket upgrades on `/` (a plain GET / stays the health answer). */
    readonly rootPath: boolean;
    /** A stream's rate without a config or WAV header (Hz). */
    readonly sampleRate: number;
    readonly showWords: boolean;
    readonly maxAlternatives: number;
    /** Model names clients may use in the path or config; empty: any. */
    readonly modelNames: readonly string[];
    /** A speaker model directory: /asr results carry speaker vectors (vosk-server's VOSK_SPK_MODEL_PATH). */
    readonly speakerModelPath: string | null;
  };
  readonly websocket: {
    readonly maxMessageBytes: number;
    readonly pingIntervalSeconds: number;
    readonly highWaterBytes: number;
    readonly maxBufferedBytes: number;
    readonly slowConsumerTimeoutMs: number;
    readonly maxConnections: number;
    readonly maxSessionsPerConnection: number;
    readonly eventRatePerSecond: number;
    readonly eventRateBurst: number;
  };
  readonly dialogue: {
    readonly maxAudioBytesPerRecording: number;
    readonly autoSuggest: boolean;
    readonly orphanedRecordingGraceMs: number;
  };
  readonly sessions: {
    readonly persistenceEnabled: boolean;
    readonly dir: string;
    readonly maxAgeMs: number;
    readonly cleanupIntervalMs: number;
    /** Sessions (live or only in the store) created from one client address. */
    readonly maxPerAddress: number;
    /** Sessions in existence in this process's store. */
    readonly maxStored: number;
    /** Estimated bytes of the sessions held in memory (the attached ones). */
    readonly maxMemoryBytes: number;
    /** What the store's sessions take (disk for SQLite, memory for the memory store). */
    readonly maxStoreBytes: number;
    /** SESSION_STORE, or from SESSION_PERSISTENCE_ENABLED when unset. */
    readonly store: 'memory' | 'sqlite' | 'redis';
  };
  /** Shared sessions and the node registry in Redis (SESSION_STORE=redis; docs/scaling.md). */
  readonly cluster: {
    readonly redisUrl: string;
    readonly keyPrefix: string;
    readonly nodeId: string;
    /** What the registry advertises to proxies and peers: NODE_ADDRESS, or null. */
    readonly nodeAddress: string | null;
    readonly leaseMs: number;
    readonly commandTimeoutMs: number;
    readonly handoverTimeoutMs: number;
    readonly registryIntervalMs: number;
    /** NODE_AGENT_PORT: HAProxy agent-check port on HOST, or null (off). */
    readonly agentPort: number | null;
  };
}

export interface LoadConfigOptions {
  /** Defaults to process.env. */
  env?: Record<string, string | undefined>;
  /** A .env file read first; the environment wins over it. Defaults to `.env` in the working directory. */
  envFile?: string | null;
}

/** Reads `.env` (optional) and the environment, validates every key, and returns a frozen Config. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const fromFile = readEnvFile(options.envFile === undefined ? resolve('.env') : options.envFile);
  const merged: Record<string, string> = { ...fromFile };
  for (const [key, value] of Object.entries(options.env ?? process.env)) {
    if (value !== undefined) merged[key] = value;
  }
  // An empty value means "use the default": that is how .env.example leaves optional keys.
  for (const key of Object.keys(merged)) {
    if (merged[key]!.trim() === '') delete merged[key];
  }
  const parsed = EnvSchema.safeParse(merged);
  if (!parsed.success) throw configErrorFrom(parsed.error, merged);
  assertConsistent(parsed.data);
  return deepFreeze(toConfig(parsed.data));
}

// One flush of streamed suggestions may pass the high-water mark by up to this much before producers pause.
const STREAMING_HEADROOM_BYTES = 64 * 1024;

/** Rules that involve more than one key. */
function assertConsistent(env: Env): void {
  // A session_resume must outwait a dead node's lease, or a node death could never be recovered from.
  if (env.REDIS_HANDOVER_TIMEOUT_MS <= env.REDIS_LEASE_MS) {
    const problem = `REDIS_HANDOVER_TIMEOUT_MS="${env.REDIS_HANDOVER_TIMEOUT_MS}": expected more than REDIS_LEASE_MS (${env.REDIS_LEASE_MS}), or a dead node's sessions could not be resumed`;
    throw new ConfigError(`invalid configuration: ${problem}`, { details: problem });
  }
  const minBuffered = env.WEBSOCKET_HIGH_WATER_BYTES + STREAMING_HEADROOM_BYTES;
  if (env.WEBSOCKET_MAX_BUFFERED_BYTES < minBuffered) {
    const problem =
      `WEBSOCKET_MAX_BUFFERED_BYTES="${env.WEBSOCKET_MAX_BUFFERED_BYTES}": expected at least WEBSOCKET_HIGH_WATER_BYTES + 65536 ` +
      `(${minBuffered}), or streaming clients are closed before they can be paused`;
    throw new ConfigError(`invalid configuration: ${problem}`, { details: problem });
  }
}

function readEnvFile(path: string | null): Record<string, string> {
  if (path === null || !existsSync(path)) return {};
  try {
    return parseEnv(readFileSync(path, 'utf8')) as Record<string, string>;
  } catch (err) {
    throw new ConfigError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Settings whose values an error message must not repeat. */
const SECRET_KEYS = new Set(['OPENROUTER_API_KEY', 'AUTH_API_KEYS', 'AUTH_JWT_SECRET', 'REDIS_URL']);

function configErrorFrom(error: z.ZodError, input: Record<string, string>): ConfigError {
  const problems = error.issues.map((issue) => {
    const key = String(issue.path[0] ?? '?');
    const value = SECRET_KEYS.has(key) ? '[redacted]' : input[key];
    return `${key}=${JSON.stringify(value ?? '')}: ${issue.message}`;
  });
  return new ConfigError(`invalid configuration: ${problems.join('; ')}`, { details: problems.join('; ') });
}

function sttEngine(env: Env): Config['stt']['engine'] {
  if (env.STT_ENGINE !== undefined) return env.STT_ENGINE;
  // USE_REAL_VOSK is the replaced backend's switch; STT_ENGINE wins when both are set.
  if (env.USE_REAL_VOSK !== undefined) return env.USE_REAL_VOSK ? 'vosk' : 'mock';
  return 'auto';
}

function toConfig(env: Env): Config {
  const apiKey = env.OPENROUTER_API_KEY ?? null;
  return {
    host: env.HOST,
    port: env.PORT,
    logLevel: env.LOG_LEVEL ?? (env.DEBUG ? 'debug' : 'info'),
    logFile: env.LOG_FILE ? { path: env.LOG_FILE, maxSize: env.LOG_FILE_MAX_SIZE, keep: env.LOG_FILE_KEEP } : null,
    allowedOrigins: env.ALLOWED_ORIGINS.includes('*') ? null : env.ALLOWED_ORIGINS,
    allowFallbackTransport: env.ALLOW_FALLBACK_TRANSPORT,
    demoEnabled: env.DEMO_ENABLED,
    trustProxy: env.TRUST_PROXY,
    trustedProxies: env.TRUSTED_PROXIES,
    shutdownDrainMs: env.SHUTDOWN_DRAIN_MS,
    auth: {
      apiKeys: env.AUTH_API_KEYS,
      apiKeysFile: env.AUTH_API_KEYS_FILE ?? null,
      jwtSecret: env.AUTH_JWT_SECRET ?? null,
      jwksFile: env.AUTH_JWT_JWKS_FILE ?? null,
    },
    quotas: {
      connections: env.QUOTA_CONNECTIONS,
      liveSessions: env.QUOTA_LIVE_SESSIONS,
      recordings: env.QUOTA_RECORDINGS,
      generationsPerMinute: env.QUOTA_GENERATIONS_PER_MINUTE,
    },
    metrics: { listener: env.METRICS_PORT === undefined ? null : { host: env.METRICS_HOST, port: env.METRICS_PORT } },
    llm: {
      engine: apiKey ? 'openrouter' : 'mock',
      apiKey,
      baseUrl: env.OPENROUTER_BASE_URL.replace(/\/+$/, ''),
      model: env.OPENROUTER_MODEL,
      fallbackModels: env.OPENROUTER_FALLBACK_MODELS,
      temperature: env.OPENROUTER_TEMPERATURE,
      maxTokens: env.OPENROUTER_MAX_TOKENS,
      requestTimeoutMs: env.OPENROUTER_TIMEOUT_MS,
      idleTimeoutMs: env.OPENROUTER_IDLE_TIMEOUT_MS,
      maxRetries: env.OPENROUTER_MAX_RETRIES,
      referer: env.OPENROUTER_REFERER,
      title: env.OPENROUTER_TITLE,
      maxInFlight: env.LLM_MAX_IN_FLIGHT,
      maxQueue: env.LLM_MAX_QUEUE,
      mockDeltaDelayMs: env.MOCK_LLM_DELTA_DELAY_MS,
    },
    stt: {
      engine: sttEngine(env),
      modelPath: env.VOSK_MODEL_PATH,
      sampleRate: env.VOSK_SAMPLE_RATE,
      workers: env.MAX_WORKERS,
      targetFinishLatencyMs: env.STT_TARGET_FINISH_LATENCY_MS,
    },
    asr: {
      enabled: env.ASR_ENABLED,
      rootPath: env.ASR_ROOT_PATH,
      sampleRate: env.ASR_SAMPLE_RATE,
      showWords: env.ASR_SHOW_WORDS,
      maxAlternatives: env.ASR_MAX_ALTERNATIVES,
      modelNames: env.ASR_MODEL_NAMES,
      speakerModelPath: env.VOSK_SPK_MODEL_PATH ?? null,
    },
    websocket: {
      maxMessageBytes: env.WEBSOCKET_MAX_MESSAGE_SIZE,
      pingIntervalSeconds: env.WEBSOCKET_PING_INTERVAL,
      highWaterBytes: env.WEBSOCKET_HIGH_WATER_BYTES,
      maxBufferedBytes: env.WEBSOCKET_MAX_BUFFERED_BYTES,
      slowConsumerTimeoutMs: env.SLOW_CONSUMER_TIMEOUT_MS,
      maxConnections: env.MAX_CONNECTIONS,
      maxSessionsPerConnection: env.MAX_SESSIONS_PER_CONNECTION,
      eventRatePerSecond: env.EVENT_RATE_PER_SECOND,
      eventRateBurst: env.EVENT_RATE_BURST,
    },
    dialogue: {
      maxAudioBytesPerRecording: env.AUDIO_BUFFER_MAX_SIZE,
      autoSuggest: env.AUTO_SUGGEST,
      orphanedRecordingGraceMs: env.ORPHANED_RECORDING_GRACE_MS,
    },
    sessions: {
      persistenceEnabled: env.SESSION_PERSISTENCE_ENABLED,
      dir: env.SESSION_PERSISTENCE_DIR,
      maxAgeMs: Math.round(env.SESSION_MAX_PERSISTENCE_HOURS * 3_600_000),
      cleanupIntervalMs: Math.round(env.SESSION_CLEANUP_INTERVAL_MINUTES * 60_000),
      maxPerAddress: env.MAX_SESSIONS_PER_ADDRESS,
      maxStored: env.MAX_SESSIONS,
      maxMemoryBytes: env.SESSION_MEMORY_MAX_MB * 1024 * 1024,
      maxStoreBytes: env.SESSION_STORE_MAX_MB * 1024 * 1024,
      store: env.SESSION_STORE ?? (env.SESSION_PERSISTENCE_ENABLED ? 'sqlite' : 'memory'),
    },
    cluster: {
      redisUrl: env.REDIS_URL,
      keyPrefix: env.REDIS_KEY_PREFIX,
      // A fresh id per process unless set: a restarted node must not inherit a lease of its previous life.
      nodeId: env.NODE_ID ?? `${hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 40)}-${randomBytes(4).toString('hex')}`,
      nodeAddress: env.NODE_ADDRESS ?? null,
      leaseMs: env.REDIS_LEASE_MS,
      commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS,
      handoverTimeoutMs: env.REDIS_HANDOVER_TIMEOUT_MS,
      registryIntervalMs: env.NODE_REGISTRY_INTERVAL_MS,
      agentPort: env.NODE_AGENT_PORT ?? null,
    },
  };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
