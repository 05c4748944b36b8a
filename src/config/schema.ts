import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { trustedProxyList } from '../transport/client-address.js';

// Every setting voxgate reads, with its default. Keys are the environment variable names, so an error
// can name exactly what the operator has to fix. docs/configuration.md and .env.example list the same
// keys (test/config/docs.test.ts keeps them in step).

const boolean = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off', 'True', 'False', 'TRUE', 'FALSE'], {
    error: 'expected true or false',
  })
  .transform((value) => ['true', '1', 'yes', 'on'].includes(value.toLowerCase()));

function integer(min: number, max: number) {
  return z
    .string()
    .trim()
    .regex(/^-?\d+$/, { error: `expected an integer ${min}..${max}` })
    .transform(Number)
    .pipe(z.number().int().min(min, { error: `expected an integer ${min}..${max}` }).max(max, { error: `expected an integer ${min}..${max}` }));
}

function decimal(min: number, max: number) {
  return z
    .string()
    .trim()
    .regex(/^-?\d+(\.\d+)?$/, { error: `expected a number ${min}..${max}` })
    .transform(Number)
    .pipe(z.number().min(min, { error: `expected a number ${min}..${max}` }).max(max, { error: `expected a number ${min}..${max}` }));
}

const commaList = z
  .string()
  .transform((value) => value.split(',').map((item) => item.trim()).filter((item) => item.length > 0));

const url = z.string().trim().pipe(z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }));

const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
  error: 'expected one of fatal, error, warn, info, debug, trace, silent',
});

/** Raw environment -> typed settings. Absent keys take the default; empty strings count as absent. */
export const EnvSchema = z.object({
  HOST: z.string().trim().min(1).default('0.0.0.0'),
  PORT: integer(0, 65535).default(8000),
  DEBUG: boolean.default(false),
  LOG_LEVEL: logLevel.optional(),
  LOG_FILE: z.string().trim().optional(),
  LOG_FILE_MAX_SIZE: z.string().trim().regex(/^\d+[kmg]?$/i, { error: 'expected a size such as 10m' }).default('10m'),
  LOG_FILE_KEEP: integer(1, 1000).default(7),
  ALLOWED_ORIGINS: commaList.default(['*']),
  ALLOW_FALLBACK_TRANSPORT: boolean.default(false),
  DEMO_ENABLED: boolean.default(true),
  TRUST_PROXY: boolean.default(false),
  TRUSTED_PROXIES: commaList.default([]).superRefine((entries, ctx) => {
    try {
      trustedProxyList(entries);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `${(err as Error).message}: expected IP addresses or CIDR networks, comma-separated` });
    }
  }),

  AUTH_API_KEYS: commaList.default([]),
  AUTH_API_KEYS_FILE: z.string().trim().min(1).optional(),
  AUTH_JWT_SECRET: z.string().min(32, { error: 'expected at least 32 characters (HS256 needs a 256-bit secret)' }).optional(),
  AUTH_JWT_JWKS_FILE: z.string().trim().min(1).optional(),

  // 0: no quota (the default: the drop-in's behaviour, and MAX_CONNECTIONS / MAX_SESSIONS_PER_ADDRESS still bound).
  QUOTA_CONNECTIONS: integer(0, 1_000_000).default(0),
  QUOTA_LIVE_SESSIONS: integer(0, 1_000_000).default(0),
  QUOTA_RECORDINGS: integer(0, 1_000_000).default(0),
  QUOTA_GENERATIONS_PER_MINUTE: integer(0, 1_000_000).default(0),

  METRICS_PORT: integer(0, 65535).optional(),
  METRICS_HOST: z.string().trim().min(1).default('127.0.0.1'),

  OPENROUTER_API_KEY: z.string().trim().optional(),
  OPENROUTER_BASE_URL: url.default('https://openrouter.ai/api/v1'),
  OPENROUTER_MODEL: z.string().trim().min(1).default('openai/gpt-4o-mini'),
  OPENROUTER_FALLBACK_MODELS: commaList.default([]),
  OPENROUTER_TEMPERATURE: decimal(0, 2).default(0.7),
  OPENROUTER_MAX_TOKENS: integer(16, 32768).default(600),
  OPENROUTER_TIMEOUT_MS: integer(1000, 600_000).default(30_000),
  OPENROUTER_IDLE_TIMEOUT_MS: integer(500, 600_000).default(15_000),
  OPENROUTER_MAX_RETRIES: integer(0, 10).default(2),
  OPENROUTER_REFERER: z.string().trim().default('https://github.com/voxgate/voxgate'),
  OPENROUTER_TITLE: z.string().trim().default('voxgate'),
  LLM_MAX_IN_FLIGHT: integer(1, 100_000).default(512),
  LLM_MAX_QUEUE: integer(0, 1_000_000).default(2048),
  MOCK_LLM_DELTA_DELAY_MS: integer(0, 10_000).default(20),

  STT_ENGINE: z.enum(['auto', 'vosk', 'mock'], { error: 'expected auto, vosk or mock' }).optional(),
  USE_REAL_VOSK: boolean.optional(),
  VOSK_MODEL_PATH: z.string().trim().min(1).default('model/vosk-model-small-cn-0.22'),
  VOSK_SAMPLE_RATE: integer(8000, 48000).default(16000),
  MAX_WORKERS: integer(0, 256).default(availableParallelism()),
  STT_TARGET_FINISH_LATENCY_MS: integer(1, 60_000).default(250),

  // The vosk-server-compatible endpoint (docs/asr.md). Defaults are vosk-server's.
  ASR_ENABLED: boolean.default(true),
  ASR_ROOT_PATH: boolean.default(false),
  ASR_SAMPLE_RATE: integer(8000, 48000).default(8000),
  ASR_SHOW_WORDS: boolean.default(true),
  ASR_MAX_ALTERNATIVES: integer(0, 100).default(0),
  VOSK_SPK_MODEL_PATH: z.string().trim().min(1).optional(),
  ASR_MODEL_NAMES: commaList.default([]).superRefine((names, ctx) => {
    for (const name of names) {
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(name)}: expected names of letters, digits, '.', '_' or '-', comma-separated` });
    }
  }),

  AUDIO_BUFFER_MAX_SIZE: integer(64 * 1024, 1024 * 1024 * 1024).default(32 * 1024 * 1024),
  WEBSOCKET_MAX_MESSAGE_SIZE: integer(1024, 64 * 1024 * 1024).default(16 * 1024 * 1024),
  WEBSOCKET_PING_INTERVAL: integer(4, 3600).default(20),
  WEBSOCKET_HIGH_WATER_BYTES: integer(1024, 256 * 1024 * 1024).default(256 * 1024),
  WEBSOCKET_MAX_BUFFERED_BYTES: integer(4096, 1024 * 1024 * 1024).default(4 * 1024 * 1024),
  SLOW_CONSUMER_TIMEOUT_MS: integer(100, 600_000).default(10_000),
  MAX_CONNECTIONS: integer(1, 1_000_000).default(10_000),
  MAX_SESSIONS_PER_CONNECTION: integer(1, 1000).default(8),
  EVENT_RATE_PER_SECOND: integer(1, 100_000).default(50),
  EVENT_RATE_BURST: integer(1, 100_000).default(200),
  AUTO_SUGGEST: boolean.default(true),
  ORPHANED_RECORDING_GRACE_MS: integer(1000, 86_400_000).default(60_000),
  SHUTDOWN_DRAIN_MS: integer(0, 600_000).default(5_000),

  SESSION_PERSISTENCE_ENABLED: boolean.default(true),
  SESSION_PERSISTENCE_DIR: z.string().trim().min(1).default('data'),
  SESSION_MAX_PERSISTENCE_HOURS: decimal(0.0001, 24 * 365).default(24),
  SESSION_CLEANUP_INTERVAL_MINUTES: decimal(0.001, 24 * 60).default(60),
  MAX_SESSIONS_PER_ADDRESS: integer(1, 1_000_000).default(200),
  MAX_SESSIONS: integer(1, 10_000_000).default(20_000),
  SESSION_MEMORY_MAX_MB: integer(16, 1024 * 1024).default(1024),
  SESSION_STORE_MAX_MB: integer(16, 1024 * 1024 * 1024).default(4096),

  // Scaling out (docs/scaling.md). Unset SESSION_STORE: SESSION_PERSISTENCE_ENABLED picks sqlite or memory.
  SESSION_STORE: z.enum(['memory', 'sqlite', 'redis'], { error: 'expected memory, sqlite or redis' }).optional(),
  REDIS_URL: z.string().trim().pipe(z.url({ protocol: /^rediss?$/, error: 'expected a redis:// or rediss:// URL' })).default('redis://127.0.0.1:6379'),
  REDIS_KEY_PREFIX: z.string().trim().min(1).default('voxgate:'),
  REDIS_LEASE_MS: integer(1000, 600_000).default(5_000),
  REDIS_COMMAND_TIMEOUT_MS: integer(50, 60_000).default(1_000),
  REDIS_HANDOVER_TIMEOUT_MS: integer(1000, 600_000).default(8_000),
  NODE_ID: z.string().trim().regex(/^[A-Za-z0-9._-]{1,64}$/, { error: 'expected 1..64 letters, digits, dots, dashes or underscores' }).optional(),
  NODE_ADDRESS: z.string().trim().min(1).optional(),
  NODE_REGISTRY_INTERVAL_MS: integer(500, 60_000).default(2_000),
  NODE_AGENT_PORT: integer(0, 65535).optional(),
});

export type Env = z.output<typeof EnvSchema>;
export type EnvKey = keyof z.input<typeof EnvSchema>;
