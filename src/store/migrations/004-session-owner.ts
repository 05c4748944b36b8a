import type { Migration } from './migration.js';

// With credentials on (issue 14), a session belongs to the credential that created it: `sub:<sub>` or
// `key:<digest prefix>`. NULL for sessions created without credentials (every session before this step):
// those stay open to any connection, as the app's drop-in behaviour requires.
export const sessionOwner: Migration = {
  version: 4,
  name: 'sessions.owner: the credential owner that created the session',
  sql: `ALTER TABLE sessions ADD COLUMN owner TEXT;`,
};
