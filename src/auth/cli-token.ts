import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { signToken } from './sign-token.js';

// `npm run token -- --sub alice --ttl 1h [--endpoints conversation,asr] [--max-sessions 5]
//  [--max-generations-per-minute 20]`: prints one HS256 token signed with AUTH_JWT_SECRET (from the
// environment or .env), for trying credentials out. Production tokens come from the operator's own backend.

const USAGE = 'usage: npm run token -- --sub <owner> [--ttl 1h] [--endpoints conversation,asr] [--max-sessions N] [--max-generations-per-minute N]';

function count(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) fail(`--${name} expects a whole number`);
  return Number(value);
}

function fail(message: string): never {
  process.stderr.write(`voxgate token: ${message}\n${USAGE}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sub: { type: 'string' },
      ttl: { type: 'string', default: '1h' },
      endpoints: { type: 'string' },
      'max-sessions': { type: 'string' },
      'max-generations-per-minute': { type: 'string' },
    },
    strict: true,
  });
  if (!values.sub) fail('--sub is required');
  let secret: string | null;
  try {
    secret = loadConfig().auth.jwtSecret;
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  if (secret === null) fail('AUTH_JWT_SECRET is not set (in the environment or .env)');
  let token: string;
  try {
    token = await signToken(secret, {
      sub: values.sub,
      ttl: values.ttl,
      ...(values.endpoints === undefined ? {} : { endpoints: values.endpoints.split(',').map((e) => e.trim()) }),
      ...(values['max-sessions'] === undefined ? {} : { maxSessions: count(values['max-sessions'], 'max-sessions') }),
      ...(values['max-generations-per-minute'] === undefined
        ? {}
        : { maxGenerationsPerMinute: count(values['max-generations-per-minute'], 'max-generations-per-minute') }),
    });
  } catch (err) {
    fail((err as Error).message);
  }
  process.stdout.write(`${token}\n`);
}

void main();
