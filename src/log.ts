import { pino, type Logger } from 'pino';
import type { Config } from './config/load.js';

export type { Logger };

// Secrets must never reach a log line, whatever object they ride in on.
const REDACT_PATHS = [
  'apiKey',
  '*.apiKey',
  '*.*.apiKey',
  'authorization',
  'headers.authorization',
  '*.headers.authorization',
  'OPENROUTER_API_KEY',
  'AUTH_API_KEYS',
  'AUTH_JWT_SECRET',
  'jwtSecret',
  '*.jwtSecret',
  'apiKeys',
  '*.apiKeys',
  'credential',
  '*.credential',
  'token',
  '*.token',
  'access_token',
  '*.access_token',
  'headers["sec-websocket-protocol"]',
  '*.headers["sec-websocket-protocol"]',
];

/**
 * The process's one root logger. Without LOG_FILE it writes JSON lines to stdout through an async
 * sonic-boom (flushed by `flushLogger` at shutdown); with LOG_FILE a transport thread writes to stdout and
 * to a size-rotated file (pino-roll), so file I/O never blocks the event loop.
 */
export function createLogger(config: Pick<Config, 'logLevel' | 'logFile'>): Logger {
  const options = {
    level: config.logLevel,
    base: { service: 'voxgate', pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (config.logFile === null) {
    return pino(options, pino.destination({ dest: 1, sync: false }));
  }
  const transport = pino.transport({
    targets: [
      { target: 'pino/file', level: config.logLevel, options: { destination: 1 } },
      {
        target: 'pino-roll',
        level: config.logLevel,
        options: {
          file: config.logFile.path,
          size: config.logFile.maxSize,
          limit: { count: config.logFile.keep },
          mkdir: true,
        },
      },
    ],
  });
  return pino(options, transport);
}

/** Writes out whatever the logger still buffers; resolves once it is on its way to the OS. */
export function flushLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    logger.flush(() => resolve());
  });
}
