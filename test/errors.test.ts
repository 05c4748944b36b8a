import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import * as errors from '../src/errors.js';
import { PROJECT_ROOT } from '../src/version.js';

// Fails when src/errors.ts and docs/errors.md drift apart (after fastify's errors test).

t.test('every error code is documented, and every documented code exists', async (t) => {
  const source = readFileSync(join(PROJECT_ROOT, 'src/errors.ts'), 'utf8');
  const codes = new Set([...source.matchAll(/readonly code = '([A-Z_]+)'/g)].map((match) => match[1]!));
  const docs = readFileSync(join(PROJECT_ROOT, 'docs/errors.md'), 'utf8');
  const documented = new Set([...docs.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((match) => match[1]!));
  const appOnly = ['SESSION_ALREADY_EXISTS', 'SESSION_EXPIRED', 'WEBSOCKET_ERROR'];
  t.same([...codes].filter((code) => !documented.has(code)), [], 'undocumented codes');
  t.same([...documented].filter((code) => !codes.has(code) && !appOnly.includes(code)), [], 'documented but missing');
});

t.test('errors carry their code, details and cause', async (t) => {
  const cause = new Error('disk full');
  const error = new errors.StoreError('could not save', { details: 'SQLITE_FULL', cause });
  t.equal(error.code, 'STORAGE_ERROR');
  t.equal(error.details, 'SQLITE_FULL');
  t.equal(error.cause, cause);
  t.equal(error.name, 'StoreError');
  t.equal(errors.toVoxgateError(cause).code, 'INTERNAL_ERROR');
  t.equal(errors.toVoxgateError(error), error);
  t.equal(new errors.SttBusyError('busy').retryable, true);
  t.equal(new errors.LlmServiceError('x', { retryable: true, retryAfterSeconds: 2 }).retryAfterSeconds, 2);
});
