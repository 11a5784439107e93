import { arrayOf, boolean, decodeRecord, object, optional, string, unknownValue, type Infer } from '../codec.js';
import { randomBytes } from '../crypto/random.js';
import { KeynodeError } from '../errors.js';
import { toVaultId, vaultIdField, type VaultId } from '../ids.js';
import type { BatchOp, LogStore } from '../storage/LogStore.js';
import { Keyspace } from '../storage/Keyspace.js';
import { validateTag, validateVaultName } from './paths.js';
import { Vault, type Author } from './Vault.js';

/**
 * One vault's entry in the node's registry (stored encrypted in the node keyspace): `id` is
 * random and never changes (names do); `key` is the vault's own 32-byte key (base64), which
 * never leaves this node.
 */
export const vaultRecordCheck = object({ id: vaultIdField, name: string, key: string, tags: arrayOf(string), createdAt: string });
type VaultRecord = Infer<typeof vaultRecordCheck>;

export interface VaultSummary {
  name: string;
  tags: string[];
  createdAt: string;
}

/** The node-keyspace record listing every vault (names, keys, tags). */
export const REGISTRY_RECORD = 'vault-registry';

/**
 * The registry record. `purgePending`: a vault was deleted but the log still holds its records
 * (and old registry versions with its key): compact at the next chance. Set in the deleting
 * batch, cleared once compacted. Entries are checked one by one (`registryEntriesCheck` lets
 * `keynode check` report a bad entry without giving up on the others).
 */
const registryCheck = object({ vaults: arrayOf(vaultRecordCheck), purgePending: optional(boolean) });
export const registryEntriesCheck = object({ vaults: arrayOf(unknownValue), purgePending: optional(boolean) });
type Registry = Infer<typeof registryCheck>;

/** The node's vaults: create, find, rename, tag, delete. Vault names live only in the encrypted registry. */
export class VaultManager {
  private records: VaultRecord[];
  private purgePending: boolean;
  /** One Vault instance per vault, ever: its write queue is what serialises commits. The
   *  promise is cached (not the instance) so concurrent first opens share one instance. */
  private readonly opened = new Map<VaultId, Promise<Vault>>();
  /** Deletions so far: a purge that began before the latest one has not removed its records. */
  private deletions = 0;
  private purgeQueue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: LogStore,
    private readonly nodeKeyspace: Keyspace,
    private readonly author: Author,
  ) {
    const raw = store.get(nodeKeyspace, REGISTRY_RECORD);
    const registry: Registry = raw ? decodeRecord(registryCheck, raw, 'the vault registry record') : { vaults: [] };
    this.records = registry.vaults;
    this.purgePending = registry.purgePending === true;
  }

  /** The op that writes the registry; `records` becomes current only after the batch lands. */
  private registryOp(records: VaultRecord[], purgePending = this.purgePending): BatchOp {
    const registry: Registry = purgePending ? { vaults: records, purgePending } : { vaults: records };
    return { keyspace: this.nodeKeyspace, name: REGISTRY_RECORD, value: Buffer.from(JSON.stringify(registry)) };
  }

  /**
   * Rewrite the log without a deleted vault's records. True when done; false when it must
   * wait (no room to compact): the deletion stands, and the next open tries again.
   * Synchronous: for opening a node, before anything is served.
   */
  private purge(): boolean {
    try {
      this.store.compact();
      this.store.write([this.registryOp(this.records, false)]);
      this.purgePending = false;
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The same purge in steps that yield to the event loop (an agent keeps serving meanwhile;
   * writes made during it are carried into the new log). `purgePending` is cleared only once a
   * compaction that began after the latest deletion has finished; until then a crash leaves it
   * set and the next open purges.
   */
  private purgeInSteps(): Promise<boolean> {
    // One purge at a time, so the compaction awaited is always one this purge started.
    const run = this.purgeQueue.then(() => this.purgeOnceInSteps());
    this.purgeQueue = run.catch(() => undefined);
    return run;
  }

  private async purgeOnceInSteps(): Promise<boolean> {
    try {
      for (;;) {
        if (!this.purgePending) return true;
        const deletions = this.deletions;
        await this.store.compactInSteps();
        const done = await this.store.exclusive(() => {
          if (deletions !== this.deletions || !this.purgePending) return !this.purgePending;
          this.store.write([this.registryOp(this.records, false)]);
          this.purgePending = false;
          return true;
        });
        if (done) return true;
      }
    } catch {
      return false;
    }
  }

  /** Finish a vault deletion a crash or a full disk interrupted (called when the node opens). */
  finishPendingPurge(): void {
    if (this.purgePending) this.purge();
  }

  /** The registry as a node starts it (written in the node's first batch). */
  static initialOps(nodeKeyspace: Keyspace): BatchOp[] {
    return [{ keyspace: nodeKeyspace, name: REGISTRY_RECORD, value: Buffer.from(JSON.stringify({ vaults: [] })) }];
  }

  /** The store's one write queue: registry changes and vault commits never interleave. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    return this.store.exclusive(work);
  }

  private find(name: string): VaultRecord {
    const record = this.records.find((r) => r.name === name);
    if (!record) throw new KeynodeError('ERR_VAULT_NOT_FOUND', `no vault named "${name}"`, { vault: name });
    return record;
  }

  private summary(record: VaultRecord): VaultSummary {
    return { name: record.name, tags: [...record.tags], createdAt: record.createdAt };
  }

  get count(): number {
    return this.records.length;
  }

  listVaults(options: { tag?: string } = {}): VaultSummary[] {
    return this.records
      .filter((r) => options.tag === undefined || r.tags.includes(options.tag))
      .map((r) => this.summary(r))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  hasVault(name: string): boolean {
    return this.records.some((r) => r.name === name);
  }

  async createVault(name: string): Promise<Vault> {
    validateVaultName(name);
    return this.exclusive(async () => {
      if (this.hasVault(name)) throw new KeynodeError('ERR_VAULT_EXISTS', `a vault named "${name}" already exists`, { vault: name });
      const key = randomBytes(32);
      const record: VaultRecord = {
        id: toVaultId(randomBytes(16).toString('hex')),
        name,
        key: key.toString('base64'),
        tags: [],
        createdAt: new Date().toISOString(),
      };
      const keyspace = new Keyspace(key);
      const { vault, ops } = await Vault.initialize(name, this.store, keyspace, this.author, 'create vault');
      const records = [...this.records, record];
      this.store.write([...ops, this.registryOp(records)]);
      this.records = records;
      this.opened.set(record.id, Promise.resolve(vault));
      return vault;
    });
  }

  async openVault(name: string): Promise<Vault> {
    const record = this.find(name);
    let opening = this.opened.get(record.id);
    if (!opening) {
      opening = Vault.open(record.name, this.store, new Keyspace(Buffer.from(record.key, 'base64')), this.author);
      this.opened.set(record.id, opening);
      opening.catch(() => this.opened.delete(record.id));
    }
    return opening;
  }

  async renameVault(name: string, newName: string): Promise<void> {
    validateVaultName(newName);
    await this.exclusive(async () => {
      const record = this.find(name);
      if (name === newName) return;
      if (this.hasVault(newName)) throw new KeynodeError('ERR_VAULT_EXISTS', `a vault named "${newName}" already exists`, { vault: newName });
      const records = this.records.map((r) => (r === record ? { ...r, name: newName } : r));
      this.store.write([this.registryOp(records)]);
      this.records = records;
      (await this.opened.get(record.id))?.setName(newName);
    });
  }

  /**
   * Delete a vault and all its history from this node: its records are dropped in one batch,
   * then the log is rewritten so they (and the registry versions holding its key) leave the
   * file. `purged` is false when that rewrite must wait for free space; it resumes by itself.
   */
  async deleteVault(name: string): Promise<{ purged: boolean }> {
    await this.exclusive(async () => {
      const record = this.find(name);
      const vault = await this.openVault(name);
      const ops = await vault.deletionOps();
      const records = this.records.filter((r) => r !== record);
      this.store.write([...ops, this.registryOp(records, true)]);
      this.records = records;
      this.purgePending = true;
      this.deletions++;
      this.opened.delete(record.id);
    });
    // Outside the write queue: commits to other vaults go on while the log is rewritten.
    return { purged: await this.purgeInSteps() };
  }

  private async updateTags(name: string, change: (tags: string[]) => string[]): Promise<VaultSummary> {
    return this.exclusive(async () => {
      const record = this.find(name);
      const tags = change(record.tags);
      const updated = { ...record, tags };
      const records = this.records.map((r) => (r === record ? updated : r));
      this.store.write([this.registryOp(records)]);
      this.records = records;
      return this.summary(updated);
    });
  }

  async tagVault(name: string, tag: string): Promise<VaultSummary> {
    validateTag(tag);
    return this.updateTags(name, (tags) => (tags.includes(tag) ? tags : [...tags, tag].sort()));
  }

  async untagVault(name: string, tag: string): Promise<VaultSummary> {
    return this.updateTags(name, (tags) => {
      if (!tags.includes(tag)) throw new KeynodeError('ERR_INVALID_ARGUMENT', `vault "${name}" has no tag "${tag}"`, { vault: name, tag });
      return tags.filter((t) => t !== tag);
    });
  }
}
