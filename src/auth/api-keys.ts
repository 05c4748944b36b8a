import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * The API keys voxgate accepts, kept only as SHA-256 digests. A presented key is hashed and compared
 * with every digest in constant time (timingSafeEqual on equal-length digests, no early exit), so the
 * time taken says nothing about how much of a key was right. The owner a key stands for is `key:` and
 * the first 16 hex digits of its digest: stable across restarts and rotations, and never the key itself.
 */
export class ApiKeySet {
  #digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.#digests = digestsOf(keys);
  }

  get size(): number {
    return this.#digests.length;
  }

  /** Replaces every key at once (SIGHUP): a key not in `keys` stops working for new connections. */
  replace(keys: readonly string[]): void {
    this.#digests = digestsOf(keys);
  }

  /** The owner for `presented` if it is one of the keys, else null. */
  match(presented: string): string | null {
    const digest = sha256(presented);
    let found: Buffer | null = null;
    for (const candidate of this.#digests) {
      // Every candidate is compared, whether or not an earlier one matched.
      if (timingSafeEqual(candidate, digest)) found = candidate;
    }
    return found === null ? null : keyOwner(found);
  }
}

/** The owner name of the key with this digest (logged and stored: never the key). */
export function keyOwner(digest: Buffer): string {
  return `key:${digest.toString('hex').slice(0, 16)}`;
}

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function digestsOf(keys: readonly string[]): Buffer[] {
  return [...new Set(keys)].map(sha256);
}

/**
 * Reads AUTH_API_KEYS_FILE: one key per line; blank lines and lines starting with `#` are skipped.
 * Throws (the caller keeps the keys it had) when the file cannot be read.
 */
export function readKeysFile(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('#'));
}
