import { isKeynodeError } from '../errors.js';
import type { Keyspace } from '../storage/Keyspace.js';
import type { LogStore } from '../storage/LogStore.js';
import { checkVaults, type CheckProblem, type ObjectCounts } from '../vaults/check.js';

export type { CheckProblem, ProblemKind, ObjectCounts } from '../vaults/check.js';

/** What `keynode check` reports (`--json` prints it as is; docs/cli-json.md). */
export interface CheckReport {
  /** False when any problem is damage (the CLI then exits 7, ERR_INTEGRITY). */
  ok: boolean;
  vaults: number;
  /** Live records in the store. */
  records: number;
  /** Objects read and verified, over all vaults. */
  objects: ObjectCounts;
  /** Live records nothing refers to; null when the vault registry is unreadable (they cannot be told apart). */
  orphans: number | null;
  storeBytes: number;
  liveBytes: number;
  /** Bytes of overwritten or deleted records, until the next compaction. */
  deadBytes: number;
  problems: CheckProblem[];
}

/**
 * Verify a whole node, as `git fsck` does a repository: every record the node refers to is
 * read once and must decrypt (the whole log is replayed, node records, the vault registry, each vault's head and every
 * object reachable from it); objects must hash to their ids and everything a commit or tree
 * names must be stored. Live records reached from nothing are counted as orphans (their names
 * are unknown, so they cannot be decrypted). Runs without awaiting, so no write interleaves
 * and a half-checked change is never taken for damage.
 */
export function checkNode(options: { store: LogStore; nodeKeyspace: Keyspace; nodeRecords: readonly string[] }): CheckReport {
  const { store, nodeKeyspace } = options;
  const reached = new Set<string>();
  const onRecord = (keyspace: Keyspace, name: string) => reached.add(keyspace.recordId(name).toString('latin1'));
  const problems: CheckProblem[] = [];

  // Open trusts the index checkpoint for the batches it covers; the check replays them all.
  try {
    store.verifyLog();
  } catch (error) {
    if (!isKeynodeError(error, 'ERR_INTEGRITY')) throw error;
    problems.push({ kind: 'damaged-record', damage: true, message: 'the store log failed its integrity check on a full replay', record: 'store.log' });
  }

  for (const record of options.nodeRecords) {
    if (!store.has(nodeKeyspace, record)) {
      problems.push({ kind: 'missing-record', damage: true, message: `the node record "${record}" is missing`, record });
      continue;
    }
    onRecord(nodeKeyspace, record);
    try {
      JSON.parse(store.get(nodeKeyspace, record)!.toString('utf8'));
    } catch (error) {
      if (isKeynodeError(error, 'ERR_INTEGRITY')) {
        problems.push({ kind: 'damaged-record', damage: true, message: `the node record "${record}" failed its integrity check`, record });
      } else if (error instanceof SyntaxError) {
        problems.push({ kind: 'bad-record', damage: true, message: `the node record "${record}" is malformed`, record });
      } else throw error;
    }
  }

  const vaults = checkVaults({ store, nodeKeyspace, onRecord });
  problems.push(...vaults.problems);

  let orphans: number | null = null;
  if (vaults.registryReadable) {
    orphans = 0;
    for (const id of store.liveRecordIds()) {
      if (reached.has(id.toString('latin1'))) continue;
      orphans++;
      const record = id.toString('hex');
      problems.push({
        kind: 'orphan-record',
        damage: false,
        message: `record ${record.slice(0, 16)} is reachable from nothing (space only: e.g. a chunk of a large value whose write stopped before its commit)`,
        record,
      });
    }
  }

  const stats = store.stats();
  return {
    ok: !problems.some((problem) => problem.damage),
    vaults: vaults.vaults,
    records: stats.recordCount,
    objects: vaults.counts,
    orphans,
    storeBytes: stats.sizeBytes,
    liveBytes: stats.liveBytes,
    deadBytes: stats.deadBytes,
    problems,
  };
}
