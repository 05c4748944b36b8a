import { startVoxgate } from './app.js';
import { loadConfig } from './config/load.js';
import { ConfigError, VoxgateError } from './errors.js';
import { createLogger, type Logger } from './log.js';

// Exit codes: 0 clean shutdown, 1 start-up failed, 2 invalid configuration, 130/143 second signal.

function failStartup(message: string, exitCode: number): never {
  // Start-up errors go to stderr as one readable line (no stack trace): they are for the operator.
  process.stderr.write(`voxgate: ${message}\n`);
  process.exit(exitCode);
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) failStartup(err.message, 2);
    throw err;
  }
  const logger: Logger = createLogger(config);
  let voxgate;
  try {
    voxgate = await startVoxgate(config, logger);
  } catch (err) {
    logger.fatal({ err }, 'start-up failed');
    logger.flush();
    failStartup(err instanceof VoxgateError ? `${err.message} [${err.code}]` : String((err as Error).message ?? err), 1);
  }

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      logger.warn({ signal }, 'second signal: exiting now');
      logger.flush();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    signalled = true;
    logger.info({ signal }, 'signal received');
    voxgate.shutdown().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        logger.flush();
        process.exit(1);
      },
    );
  };
  // SIGHUP reloads AUTH_API_KEYS_FILE (key rotation without a restart). Node's default for SIGHUP is
  // to exit, so the handler is installed whether or not there is a file.
  process.on('SIGHUP', () => {
    voxgate.reloadCredentials();
  });
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

void main();
