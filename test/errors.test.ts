import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import * as errors from '../src/errors.js';
import { VoxgateError } from '../src/errors.js';
import { errorEvent } from '../src/protocol/server-events.js';
import { PROJECT_ROOT } from '../src/version.js';

// Keeps src/errors.ts and docs/errors.md in step by walking the exported classes (after fastify's
// test/internals/errors.test.js): a new class without a documented code or Chinese user message fails.

type AnyErrorClass = new (message: string, options: { retryable: boolean }) => VoxgateError;

/** Every concrete VoxgateError subclass src/errors.ts exports, with one instance each. */
function exportedErrors(): { name: string; error: VoxgateError }[] {
  const found: { name: string; error: VoxgateError }[] = [];
  for (const [name, value] of Object.entries(errors)) {
    if (typeof value !== 'function' || !(value.prototype instanceof VoxgateError)) continue;
    // Every constructor takes (message, options); the one with a required option gets it too.
    found.push({ name, error: new (value as unknown as AnyErrorClass)('probe', { retryable: false }) });
  }
  return found;
}

/** `| \`CODE\` | message | …` rows of docs/errors.md: code -> the message column. */
function documentedMessages(): Map<string, string> {
  const docs = readFileSync(join(PROJECT_ROOT, 'docs/errors.md'), 'utf8');
  return new Map([...docs.matchAll(/^\| `([A-Z_]+)` \| ([^|]+?) \|/gm)].map((match) => [match[1]!, match[2]!]));
}

const APP_ONLY_CODES = ['SESSION_ALREADY_EXISTS', 'SESSION_EXPIRED', 'WEBSOCKET_ERROR'];
const HAN = /\p{Script=Han}/u;
const LATIN = /[A-Za-z]/;

t.test('the walk finds every error class', async (t) => {
  const names = exportedErrors().map((entry) => entry.name);
  t.ok(names.length >= 20, `${names.length} classes`);
  t.ok(names.includes('SessionNotFoundError') && names.includes('ModelDownloadError'));
  t.notOk(names.includes('VoxgateError'), 'the abstract base is not a code');
});

t.test('every class has a unique code and a short Chinese user message', async (t) => {
  const seen = new Map<string, string>();
  for (const { name, error } of exportedErrors()) {
    t.match(error.code, /^[A-Z][A-Z_]+$/, `${name}.code`);
    t.notOk(seen.has(error.code), `${name}: code ${error.code} also used by ${seen.get(error.code)}`);
    seen.set(error.code, name);
    t.type(error.userMessage, 'string', `${name} declares userMessage`);
    t.ok(HAN.test(error.userMessage ?? ''), `${name}.userMessage is Chinese: ${error.userMessage}`);
    t.notOk(LATIN.test(error.userMessage ?? ''), `${name}.userMessage has no English in it`);
    t.ok((error.userMessage ?? '').length <= 20, `${name}.userMessage fits a toast`);
    t.equal(error.name, name, `${name}.name`);
  }
});

t.test('every code is documented with its user message, and every documented code exists', async (t) => {
  const documented = documentedMessages();
  const codes = new Set<string>();
  for (const { name, error } of exportedErrors()) {
    codes.add(error.code);
    t.equal(documented.get(error.code), error.userMessage, `${name}: docs/errors.md row for ${error.code}`);
  }
  const extra = [...documented.keys()].filter((code) => !codes.has(code) && !APP_ONLY_CODES.includes(code));
  t.same(extra, [], 'documented but missing');
});

t.test('an error event carries the Chinese message, and the English one in details', async (t) => {
  const withDetails = errorEvent('s-1', new errors.SessionNotFoundError('session s-1 not found', { details: 'session_id: s-1' }));
  t.same(withDetails, {
    type: 'error',
    data: { session_id: 's-1', error_code: 'SESSION_NOT_FOUND', message: '会话不存在', details: 'session s-1 not found (session_id: s-1)' },
  });
  const withoutDetails = errorEvent(null, new errors.InternalError('unexpected internal error'));
  t.same(withoutDetails.data, { session_id: null, error_code: 'INTERNAL_ERROR', message: '服务器内部错误', details: 'unexpected internal error' });
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
