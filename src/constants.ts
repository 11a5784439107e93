/** Tunables in one place, units in the names. */

/** argon2id defaults for wrapping the node's master secret (OWASP-level, DESIGN.md minimum). */
export const KDF_DEFAULT_MEMORY_KIB = 65_536;
export const KDF_DEFAULT_ITERATIONS = 3;
export const KDF_DEFAULT_PARALLELISM = 1;
/** Lowest parameters accepted at all (for tests and tiny devices); `init` warns below the defaults. */
export const KDF_MIN_MEMORY_KIB = 1_024;
export const KDF_MIN_ITERATIONS = 1;

/** How long a second process waits for the node lock before failing. */
export const NODE_LOCK_WAIT_MS = 5_000;
export const NODE_LOCK_POLL_MS = 25;

/** Store log: records larger than this are refused as corrupt lengths rather than allocated. */
export const STORE_MAX_RECORD_BYTES = 1_024 * 1_024 * 1_024;
/** Compact when at least this fraction of the log is dead records and the log is at least this big. */
export const STORE_COMPACT_DEAD_RATIO = 0.5;
export const STORE_COMPACT_MIN_BYTES = 64 * 1_024 * 1_024;

/** Secret paths. */
export const SECRET_PATH_MAX_BYTES = 4_096;
export const VAULT_NAME_MAX_BYTES = 255;

/** Generated secrets. */
export const GENERATE_DEFAULT_LENGTH = 32;
export const GENERATE_MAX_LENGTH = 4_096;

/** Abbreviated commit ids must be at least this long. */
export const COMMIT_PREFIX_MIN_CHARS = 4;
