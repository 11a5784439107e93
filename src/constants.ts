/** Tunables in one place, units in the names. */

/** argon2id defaults for wrapping the node's master secret (OWASP-level: at least 64 MiB, t=3). */
export const KDF_DEFAULT_MEMORY_KIB = 65_536;
export const KDF_DEFAULT_ITERATIONS = 3;
export const KDF_DEFAULT_PARALLELISM = 1;
/** Lowest parameters accepted at all (for tests and tiny devices); `init` warns below the defaults. */
export const KDF_MIN_MEMORY_KIB = 1_024;
export const KDF_MIN_ITERATIONS = 1;
/**
 * Highest parameters written or read. A key file is only checksummed, not authenticated, so
 * whoever can edit it picks the cost of the next unlock: these bound that to 1 GiB of memory and
 * about 20 s of CPU (16x the default memory, ~7x its passes; RFC 9106's 2 GiB option is refused).
 */
export const KDF_MAX_MEMORY_KIB = 1_024 * 1_024;
export const KDF_MAX_ITERATIONS = 20;
export const KDF_MAX_PARALLELISM = 16;

/** How long a second process waits for the node lock before failing. */
export const NODE_LOCK_WAIT_MS = 5_000;
export const NODE_LOCK_POLL_MS = 25;

/** Store log: records larger than this are refused as corrupt lengths rather than allocated. */
export const STORE_MAX_RECORD_BYTES = 1_024 * 1_024 * 1_024;
/** Compact when at least this fraction of the log is dead records and the log is at least this big. */
export const STORE_COMPACT_DEAD_RATIO = 0.5;
export const STORE_COMPACT_MIN_BYTES = 64 * 1_024 * 1_024;
/** Compaction copies live records in batches of about this size, and at most this many records
 *  (a batch is verified in one piece: small ones keep each step of compaction short). */
export const STORE_COMPACT_BATCH_BYTES = 16 * 1_024 * 1_024;
export const STORE_COMPACT_BATCH_RECORDS = 4_096;
/** Free space compaction wants beyond the live data before it starts. */
export const STORE_COMPACT_SPARE_BYTES = 1_024 * 1_024;
/** An index checkpoint is written at close once the log has grown this much past the last one. */
export const STORE_CHECKPOINT_CLOSE_BYTES = 1_024 * 1_024;
/** ...and in the background, while the store stays open, once it has grown this much. */
export const STORE_CHECKPOINT_INTERVAL_BYTES = 16 * 1_024 * 1_024;
/** Work between two yields to the event loop in compaction and background checkpoints. */
export const STORE_STEP_MS = 10;

/** Secret paths. */
export const SECRET_PATH_MAX_BYTES = 4_096;
/** One segment of a secret path: a file name on every common file system (NAME_MAX). */
export const SECRET_SEGMENT_MAX_BYTES = 255;
export const VAULT_NAME_MAX_BYTES = 255;

/** Generated secrets. */
export const GENERATE_DEFAULT_LENGTH = 32;
export const GENERATE_MAX_LENGTH = 4_096;

/** Abbreviated commit ids must be at least this long. */
export const COMMIT_PREFIX_MIN_CHARS = 4;

/**
 * Parsed trees kept per vault, in bytes (a tree of 1M entries is ~48 MB: two versions fit).
 * A tree larger than this is kept alone beside the budget (src/vaults/trees.ts, TreeCache).
 */
export const TREE_CACHE_MAX_BYTES = 128 * 1_024 * 1_024;
/**
 * Trees are stored as deltas against the directory's previous version (docs/storage-format.md).
 * A chain may have one link per this many entries (at least TREE_DELTA_MIN_CHAIN links): the
 * whole snapshot that starts it is then spread over commits at ~this many × 40 bytes each,
 * whatever the size, and reading an uncached tree reads links in proportion to its size.
 */
export const TREE_DELTA_ENTRIES_PER_LINK = 100;
export const TREE_DELTA_MIN_CHAIN = 32;
/**
 * A chain's deltas may add up to at most this share of the whole tree's bytes: past it a new
 * snapshot is cheaper to read back (bulk imports get snapshots, single edits get deltas).
 */
export const TREE_DELTA_MAX_CHAIN_SHARE = 0.125;

/** One secret's value; larger values are refused before they are read whole (CLI) or decoded (agent). */
export const SECRET_VALUE_MAX_BYTES = 64 * 1_024 * 1_024;

/**
 * Values larger than this are kept as a large blob (src/vaults/largeBlobs.ts): chunk records
 * sealed in a stream (docs/chunked-values.md) plus a manifest, read and written in pieces.
 */
export const LARGE_BLOB_THRESHOLD_BYTES = 4 * 1_024 * 1_024;
/** A large blob's chunks are written in batches of about this many bytes (one fsync each). */
export const LARGE_BLOB_BATCH_BYTES = 8 * 1_024 * 1_024;
/**
 * Bundle export builds git's pack in memory (isomorphic-git): a large value is materialised
 * only up to this size, and all of a bundle's large values up to the total; past either the
 * export is refused (ERR_NOT_SUPPORTED), never attempted.
 */
export const BUNDLE_LARGE_VALUE_MAX_BYTES = 64 * 1_024 * 1_024;
export const BUNDLE_LARGE_VALUES_TOTAL_MAX_BYTES = 256 * 1_024 * 1_024;

/**
 * The agent's socket: limits that bound its memory whatever its clients send (docs/agent-security.md).
 * A connection is "authenticated" once one of its requests carried a valid token or unlocked.
 */
export const AGENT_MAX_CONNECTIONS = 64;
/** Largest request frame of an authenticated connection (a 64 MiB value is ~86 MiB of base64). */
export const AGENT_MAX_FRAME_BYTES = 128 * 1_024 * 1_024;
/** Largest request frame before a connection has authenticated (unlock, status, small calls). */
export const AGENT_UNAUTHENTICATED_MAX_FRAME_BYTES = 64 * 1_024;
/** Requests one connection may have running at once; reading stops until one finishes. */
export const AGENT_MAX_INFLIGHT_PER_CONNECTION = 4;
/** Request bytes held (buffered or running) plus reply bytes not yet sent, over all connections. */
export const AGENT_MAX_PENDING_BYTES = 256 * 1_024 * 1_024;
/**
 * A streamed reply (secrets.ls, vaults.log; docs/api.md) goes in frames of at most this many
 * items and about this many bytes (one larger item goes alone), as the walk's pages come, so
 * what the agent holds for a stream is one page plus the socket's buffer.
 */
export const STREAM_FRAME_MAX_ITEMS = 1_000;
export const STREAM_FRAME_MAX_BYTES = 64 * 1_024;
/** A stream writes ahead while its socket holds less than this unsent, so the walk and the reader overlap. */
export const STREAM_MAX_QUEUED_BYTES = 256 * 1_024;
/** Stream frames a client holds before it stops reading its socket (the agent then waits). */
export const CLIENT_STREAM_MAX_QUEUED_FRAMES = 8;
/** A streamed request body (secrets.setStream) travels in chunks of this many bytes, as base64 in a frame. */
export const UPLOAD_CHUNK_BYTES = 1_024 * 1_024;
/** The agent refuses a body chunk larger than this (decoded): a frame of a body stays small. */
export const UPLOAD_CHUNK_MAX_BYTES = 4 * 1_024 * 1_024;
/** An upload whose client sends nothing for this long is abandoned (nothing is committed). */
export const UPLOAD_STALL_MS = 30_000;
/** A started frame must be complete within this (slow or stuck clients are dropped). */
export const AGENT_FRAME_TIMEOUT_MS = 15_000;
/** Replies not taken by the client for this long drop the connection. */
export const AGENT_WRITE_STALL_MS = 30_000;
/** A connection with nothing running, buffered or unsent is closed after this long. */
export const AGENT_CONNECTION_IDLE_MS = 120_000;
