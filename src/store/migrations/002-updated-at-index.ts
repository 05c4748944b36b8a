import type { Migration } from './migration.js';

// The expiry sweep deletes `WHERE updated_at < ?` every SESSION_CLEANUP_INTERVAL_MINUTES; without an
// index that is a scan of every session. (Kept as its own step, not folded into 001, so that upgrading an
// existing database is exercised by the tests from the first release on.)
export const updatedAtIndex: Migration = {
  version: 2,
  name: 'index sessions by updated_at for the expiry sweep',
  sql: `CREATE INDEX sessions_by_updated_at ON sessions (updated_at);`,
};
