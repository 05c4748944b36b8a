import type Database from 'better-sqlite3';
import { StoreError } from '../../errors.js';
import type { Migration } from './migration.js';
import { initialSchema } from './001-initial.js';
import { updatedAtIndex } from './002-updated-at-index.js';
import { messagesRowid } from './003-messages-rowid.js';
import { sessionOwner } from './004-session-owner.js';

export type { Migration } from './migration.js';

/** Every schema step, oldest first. The database's `PRAGMA user_version` is the last one applied. */
export const MIGRATIONS: readonly Migration[] = [initialSchema, updatedAtIndex, messagesRowid, sessionOwner];

export const LATEST_SCHEMA_VERSION = MIGRATIONS.length;

export interface MigrationResult {
  fromVersion: number;
  toVersion: number;
  applied: ReadonlyArray<{ version: number; name: string }>;
}

/**
 * Brings the schema to `target` (default: the latest). Each step and its version number commit together,
 * so a crash mid-migration leaves the previous version, complete, and the next start retries the step.
 * A database from a later release throws StoreError (never guess at a newer schema); SQLite errors
 * propagate unchanged, for the caller to wrap.
 */
export function migrate(db: Database.Database, target: number = LATEST_SCHEMA_VERSION): MigrationResult {
  const fromVersion = db.pragma('user_version', { simple: true }) as number;
  if (fromVersion > LATEST_SCHEMA_VERSION) {
    throw new StoreError(
      `the database has schema version ${fromVersion}, newer than this voxgate supports (${LATEST_SCHEMA_VERSION}); run a newer voxgate or restore a backup`,
      { details: `schema_version: ${fromVersion}` },
    );
  }
  const applied: Array<{ version: number; name: string }> = [];
  for (const migration of MIGRATIONS) {
    if (migration.version <= fromVersion || migration.version > target) continue;
    // IMMEDIATE: take the write lock before reading the version, so two processes starting on the same
    // directory at once cannot both apply a step (the second waits, then sees the new version).
    db.transaction(() => {
      const current = db.pragma('user_version', { simple: true }) as number;
      if (current >= migration.version) return;
      db.exec(migration.sql);
      // PRAGMA takes no bound parameters; the version is our own integer constant.
      db.pragma(`user_version = ${migration.version}`);
      applied.push({ version: migration.version, name: migration.name });
    }).immediate();
  }
  return { fromVersion, toVersion: db.pragma('user_version', { simple: true }) as number, applied };
}
