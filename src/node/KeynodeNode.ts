import fs from 'node:fs';
import { masterSecretToPhrase, newMasterSecret, phraseToMasterSecret } from '../crypto/recoveryPhrase.js';
import type { Argon2idParams } from '../crypto/kdf.js';
import { decodeRecord, object, string, type Infer } from '../codec.js';
import { KeynodeError, fromSystemError } from '../errors.js';
import { nodeIdField, toNodeId, type NodeId } from '../ids.js';
import { KDF_DEFAULT_ITERATIONS, KDF_DEFAULT_MEMORY_KIB, KDF_DEFAULT_PARALLELISM } from '../constants.js';
import { keyFileExists, keyFileKdfParams, phraseMatchesKeyFile, unlockKeyFile, writeKeyFile, KEY_FILE } from '../keys/KeyFile.js';
import { NodeKeys } from '../keys/NodeKeys.js';
import { nodeIdFromPublicKey } from '../keys/nodeId.js';
import { ensurePrivateDir } from '../storage/files.js';
import { Keyspace } from '../storage/Keyspace.js';
import { LogStore, STORE_FILE, type OpenStoreOptions, type StoreOpenReport } from '../storage/LogStore.js';
import { StoreMark } from '../storage/StoreMark.js';
import { LOCK_FILE, NodeLock } from '../storage/NodeLock.js';
import { VaultManager } from '../vaults/VaultManager.js';

export const DEFAULT_KDF: Argon2idParams = {
  memoryKib: KDF_DEFAULT_MEMORY_KIB,
  iterations: KDF_DEFAULT_ITERATIONS,
  parallelism: KDF_DEFAULT_PARALLELISM,
};

/** A password as the user gave it; strings are encoded as UTF-8. */
export type Password = string | Uint8Array;

/** The password as bytes of our own (the caller zeroes them). */
export function passwordBytes(password: Password): Buffer {
  if (typeof password === 'string' ? password.length === 0 : password.length === 0) {
    throw new KeynodeError('ERR_PASSWORD_REQUIRED', 'the password must not be empty');
  }
  return typeof password === 'string' ? Buffer.from(password, 'utf8') : Buffer.from(password);
}

/** The node's identity record (stored encrypted in the node keyspace). */
const nodeInfoRecord = object({ nodeId: nodeIdField, publicKey: string, createdAt: string });
type NodeInfo = Infer<typeof nodeInfoRecord>;

export interface NodeStatus {
  nodeId: NodeId;
  /** Ed25519 public key, base64url. */
  publicKey: string;
  nodePath: string;
  createdAt: string;
  vaultCount: number;
  storeBytes: number;
  /** What opening the store found: a torn tail left by a crash, an older state accepted. */
  store: StoreOpenReport;
}

export interface OpenNodeOptions extends OpenStoreOptions {
  nodePath: string;
  password: Password;
  /** How long to wait for another process to release the node (default 5 s). */
  lockWaitMs?: number;
  /** A lock the caller already holds (an agent keeps it while locked); it is not released on failure. */
  heldLock?: NodeLock;
}

export interface CreateNodeOptions {
  nodePath: string;
  password: Password;
  /** argon2id parameters (defaults: 64 MiB, 3 iterations). */
  kdf?: Partial<Argon2idParams>;
}

const NODE_INFO_RECORD = 'node-info';

/** Files a node directory may hold; anything else means the directory is not ours to initialise. */
const NODE_FILES = new Set([KEY_FILE, STORE_FILE, LOCK_FILE, StoreMark.FILE]);

function readNodeInfo(store: LogStore, keys: NodeKeys, nodePath: string): NodeInfo {
  const raw = store.get(new Keyspace(keys.nodeKeyspaceSecret), NODE_INFO_RECORD);
  if (!raw) throw new KeynodeError('ERR_INTEGRITY', `node ${nodePath} is missing its identity record`, { nodePath });
  return decodeRecord(nodeInfoRecord, raw, 'the node identity record', { nodePath });
}

/**
 * An open, unlocked node: its identity, its store and its vaults. Holds the node's lock until
 * `close()`. Create one with `KeynodeNode.create` or `KeynodeNode.open`.
 */
export class KeynodeNode {
  readonly vaults: VaultManager;
  private closed = false;

  private constructor(
    readonly nodePath: string,
    private readonly keys: NodeKeys,
    private readonly store: LogStore,
    private readonly lock: NodeLock,
    private readonly info: NodeInfo,
  ) {
    const nodeKeyspace = new Keyspace(keys.nodeKeyspaceSecret);
    this.vaults = new VaultManager(store, nodeKeyspace, { name: info.nodeId, email: `${info.nodeId}@keynode` });
  }

  get nodeId(): NodeId {
    return this.info.nodeId;
  }

  get publicKey(): string {
    return this.info.publicKey;
  }

  /**
   * Create a node at `nodePath`. Returns the open node and the 24-word recovery phrase, which
   * is shown once and never stored.
   */
  static async create(options: CreateNodeOptions): Promise<{ node: KeynodeNode; recoveryPhrase: string }> {
    const master = newMasterSecret();
    const node = await KeynodeNode.createWithSecret(options, master);
    const recoveryPhrase = masterSecretToPhrase(master);
    master.fill(0);
    return { node, recoveryPhrase };
  }

  /**
   * Refuse a directory that is not ours to initialise, before changing anything in it (not
   * even its mode), then make it private.
   */
  private static prepareDirectory(nodePath: string): void {
    if (keyFileExists(nodePath)) throw new KeynodeError('ERR_NODE_EXISTS', `a node already exists at ${nodePath}`, { nodePath });
    let names: string[] = [];
    try {
      names = fs.readdirSync(nodePath);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR') throw new KeynodeError('ERR_INVALID_ARGUMENT', `${nodePath} is a file, not a directory`, { nodePath });
      if (code !== 'ENOENT') throw fromSystemError(error, `reading ${nodePath}`);
    }
    const foreign = names.filter((name) => !NODE_FILES.has(name));
    if (foreign.length > 0) {
      throw new KeynodeError('ERR_INVALID_ARGUMENT', `${nodePath} is not empty; choose an empty or new directory for the node`, { nodePath });
    }
    ensurePrivateDir(nodePath);
  }

  private static async createWithSecret(options: CreateNodeOptions, master: Buffer): Promise<KeynodeNode> {
    const { nodePath } = options;
    const password = passwordBytes(options.password);
    const kdf = { ...DEFAULT_KDF, ...options.kdf };
    KeynodeNode.prepareDirectory(nodePath);
    const lock = await NodeLock.acquire(nodePath, { waitMs: 0 });
    let createdStore = false;
    let store: LogStore | undefined;
    try {
      if (LogStore.hasData(nodePath)) {
        // The key file is gone but the data is not: only its recovery phrase can open it.
        throw new KeynodeError(
          'ERR_NODE_EXISTS',
          `${nodePath} holds a store without its key file: run "keynode recover" with that node's recovery phrase, or move ${STORE_FILE} away to start afresh`,
          { nodePath },
        );
      }
      // An empty store (header only) is left from an interrupted init: it holds nothing.
      fs.rmSync(`${nodePath}/${STORE_FILE}`, { force: true });
      const keys = new NodeKeys(master);
      const info: NodeInfo = {
        nodeId: toNodeId(await nodeIdFromPublicKey(keys.identity.publicKeyRaw)),
        publicKey: keys.identity.publicKeyRaw.toString('base64url'),
        createdAt: new Date().toISOString(),
      };
      LogStore.create(nodePath, keys.storeBatchKey);
      createdStore = true;
      store = LogStore.open(nodePath, keys.storeBatchKey);
      const nodeKeyspace = new Keyspace(keys.nodeKeyspaceSecret);
      store.write([{ keyspace: nodeKeyspace, name: NODE_INFO_RECORD, value: Buffer.from(JSON.stringify(info)) }, ...VaultManager.initialOps(nodeKeyspace)]);
      // The key file is written last: its presence is what makes the directory a node.
      await writeKeyFile(nodePath, master, password, kdf);
      return new KeynodeNode(nodePath, keys, store, lock, info);
    } catch (error) {
      store?.close();
      if (createdStore && !keyFileExists(nodePath)) {
        // Nothing of it was shown to anyone (no phrase, no node id): leave the directory as it was.
        fs.rmSync(`${nodePath}/${STORE_FILE}`, { force: true });
        fs.rmSync(`${nodePath}/${StoreMark.FILE}`, { force: true });
      }
      lock.release();
      throw fromSystemError(error, `creating the node at ${nodePath}`);
    } finally {
      password.fill(0);
    }
  }

  /** Unlock and open the node at `nodePath`. */
  static async open(options: OpenNodeOptions): Promise<KeynodeNode> {
    const { nodePath } = options;
    if (!keyFileExists(nodePath)) throw new KeynodeError('ERR_NODE_NOT_FOUND', `no keynode node at ${nodePath}`, { nodePath });
    const password = passwordBytes(options.password);
    let master: Buffer;
    try {
      master = await unlockKeyFile(nodePath, password);
    } finally {
      password.fill(0);
    }
    const lock = options.heldLock ?? (await NodeLock.acquire(nodePath, { waitMs: options.lockWaitMs }));
    try {
      const keys = new NodeKeys(master);
      master.fill(0);
      const store = LogStore.open(nodePath, keys.storeBatchKey, { acceptOlderState: options.acceptOlderState });
      try {
        // The registry is decoded here too: a damaged one must not leave the store open.
        const node = new KeynodeNode(nodePath, keys, store, lock, readNodeInfo(store, keys, nodePath));
        node.vaults.finishPendingPurge();
        return node;
      } catch (error) {
        store.close();
        throw error;
      }
    } catch (error) {
      if (!options.heldLock) lock.release();
      throw error;
    }
  }

  /** Change the password: only the key file is rewritten (atomically); no data is re-encrypted. */
  static async changePassword(options: { nodePath: string; password: Password; newPassword: Password; kdf?: Partial<Argon2idParams> }): Promise<void> {
    const { nodePath } = options;
    if (!keyFileExists(nodePath)) throw new KeynodeError('ERR_NODE_NOT_FOUND', `no keynode node at ${nodePath}`, { nodePath });
    const oldPassword = passwordBytes(options.password);
    const newPassword = passwordBytes(options.newPassword);
    const lock = await NodeLock.acquire(nodePath);
    try {
      const master = await unlockKeyFile(nodePath, oldPassword);
      await writeKeyFile(nodePath, master, newPassword, { ...keyFileKdfParams(nodePath), ...options.kdf });
      master.fill(0);
    } finally {
      lock.release();
      oldPassword.fill(0);
      newPassword.fill(0);
    }
  }

  /**
   * Rebuild a node's identity from its recovery phrase with a new password. If a node exists
   * at `nodePath`, the phrase must be its own and its data stays readable (the phrase encodes
   * the master secret every key derives from); otherwise a new, empty node with that identity
   * is created there.
   */
  static async recover(options: CreateNodeOptions & { recoveryPhrase: string }): Promise<{ nodeId: NodeId; existing: boolean }> {
    const master = phraseToMasterSecret(options.recoveryPhrase);
    if (!master) throw new KeynodeError('ERR_INVALID_PHRASE', 'the recovery phrase is not 24 valid words (check spelling and order)');
    try {
      if (!keyFileExists(options.nodePath)) {
        if (LogStore.hasData(options.nodePath)) return await KeynodeNode.recoverStore(options, master);
        const node = await KeynodeNode.createWithSecret(options, master);
        const nodeId = node.nodeId;
        node.close();
        return { nodeId, existing: false };
      }
      if (!phraseMatchesKeyFile(options.nodePath, master)) {
        throw new KeynodeError('ERR_WRONG_PHRASE', `that recovery phrase does not belong to the node at ${options.nodePath}`);
      }
      const password = passwordBytes(options.password);
      const lock = await NodeLock.acquire(options.nodePath);
      try {
        await writeKeyFile(options.nodePath, master, password, { ...keyFileKdfParams(options.nodePath), ...options.kdf });
      } finally {
        lock.release();
        password.fill(0);
      }
      const keys = new NodeKeys(master);
      const nodeId = toNodeId(await nodeIdFromPublicKey(keys.identity.publicKeyRaw));
      keys.wipe();
      return { nodeId, existing: true };
    } finally {
      master.fill(0);
    }
  }

  /**
   * The key file is gone but the store is there: open the store with the phrase's keys (the
   * phrase encodes the master secret every key derives from) and write only a new key file.
   */
  private static async recoverStore(options: CreateNodeOptions, master: Buffer): Promise<{ nodeId: NodeId; existing: boolean }> {
    const { nodePath } = options;
    const password = passwordBytes(options.password);
    const kdf = { ...DEFAULT_KDF, ...options.kdf };
    const lock = await NodeLock.acquire(nodePath);
    const keys = new NodeKeys(master);
    try {
      if (!LogStore.belongsTo(nodePath, keys.storeBatchKey)) {
        throw new KeynodeError('ERR_WRONG_PHRASE', `that recovery phrase does not belong to the store at ${nodePath}; nothing was changed`, { nodePath });
      }
      // The phrase is this store's (its length tag verifies): the key file can be written before
      // the store is read, so a store that fails to open (an older copy) is open to "check".
      await writeKeyFile(nodePath, master, password, kdf);
      const store = LogStore.open(nodePath, keys.storeBatchKey);
      try {
        const info = readNodeInfo(store, keys, nodePath);
        return { nodeId: info.nodeId, existing: true };
      } finally {
        store.close();
      }
    } finally {
      keys.wipe();
      lock.release();
      password.fill(0);
    }
  }

  status(): NodeStatus {
    this.assertOpen();
    return {
      nodeId: this.info.nodeId,
      publicKey: this.info.publicKey,
      nodePath: this.nodePath,
      createdAt: this.info.createdAt,
      vaultCount: this.vaults.count,
      storeBytes: this.store.sizeBytes,
      store: { ...this.store.report },
    };
  }

  /** Verify every record, object and ref, like `git fsck` (node/check.ts); damage is reported, not thrown. */
  async check() {
    const { checkNode } = await import('./check.js');
    this.assertOpen();
    const report = checkNode({ store: this.store, nodeKeyspace: new Keyspace(this.keys.nodeKeyspaceSecret), nodeRecords: [NODE_INFO_RECORD] });
    return { ...report, store: { ...this.store.report } };
  }

  private assertOpen(): void {
    if (this.closed) throw new KeynodeError('ERR_INTERNAL', 'the node is closed');
  }

  /**
   * Flush nothing (every write is already durable), compact if worthwhile, drop keys, and
   * release the lock unless `keepLock` (an agent that locks keeps owning the node).
   */
  close(options: { keepLock?: boolean } = {}): void {
    if (this.closed) return;
    this.closed = true;
    try {
      // Worth doing, never worth failing for: the log is whole either way (a full disk, say).
      if (this.store.shouldCompact) this.store.compact();
    } catch {
      /* compaction is retried at the next close */
    } finally {
      this.store.close();
      this.keys.wipe();
      if (!options.keepLock) this.lock.release();
    }
  }
}
