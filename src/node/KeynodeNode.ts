import fs from 'node:fs';
import { masterSecretToPhrase, newMasterSecret, phraseToMasterSecret } from '../crypto/recoveryPhrase.js';
import type { Argon2idParams } from '../crypto/kdf.js';
import { KeynodeError, fromSystemError } from '../errors.js';
import { KDF_DEFAULT_ITERATIONS, KDF_DEFAULT_MEMORY_KIB, KDF_DEFAULT_PARALLELISM } from '../constants.js';
import { keyFileExists, keyFileKdfParams, phraseMatchesKeyFile, unlockKeyFile, writeKeyFile, KEY_FILE } from '../keys/KeyFile.js';
import { NodeKeys } from '../keys/NodeKeys.js';
import { nodeIdFromPublicKey } from '../keys/nodeId.js';
import { ensurePrivateDir } from '../storage/files.js';
import { Keyspace } from '../storage/Keyspace.js';
import { LogStore, STORE_FILE } from '../storage/LogStore.js';
import { LOCK_FILE, NodeLock } from '../storage/NodeLock.js';
import { VaultManager } from '../vaults/VaultManager.js';

export const DEFAULT_KDF: Argon2idParams = {
  memoryKib: KDF_DEFAULT_MEMORY_KIB,
  iterations: KDF_DEFAULT_ITERATIONS,
  parallelism: KDF_DEFAULT_PARALLELISM,
};

/** A password as the user gave it; strings are encoded as UTF-8. */
export type Password = string | Uint8Array;

function passwordBytes(password: Password): Buffer {
  if (typeof password === 'string' ? password.length === 0 : password.length === 0) {
    throw new KeynodeError('ERR_PASSWORD_REQUIRED', 'the password must not be empty');
  }
  return typeof password === 'string' ? Buffer.from(password, 'utf8') : Buffer.from(password);
}

interface NodeInfo {
  nodeId: string;
  publicKey: string;
  createdAt: string;
}

export interface NodeStatus {
  nodeId: string;
  /** Ed25519 public key, base64url. */
  publicKey: string;
  nodePath: string;
  createdAt: string;
  vaultCount: number;
  storeBytes: number;
}

export interface OpenNodeOptions {
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
const NODE_FILES = new Set([KEY_FILE, STORE_FILE, LOCK_FILE]);

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

  get nodeId(): string {
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

  private static async createWithSecret(options: CreateNodeOptions, master: Buffer): Promise<KeynodeNode> {
    const { nodePath } = options;
    const password = passwordBytes(options.password);
    const kdf = { ...DEFAULT_KDF, ...options.kdf };
    ensurePrivateDir(nodePath);
    if (keyFileExists(nodePath)) throw new KeynodeError('ERR_NODE_EXISTS', `a node already exists at ${nodePath}`, { nodePath });
    const foreign = fs.readdirSync(nodePath).filter((name) => !NODE_FILES.has(name));
    if (foreign.length > 0) {
      throw new KeynodeError('ERR_INVALID_ARGUMENT', `${nodePath} is not empty; choose an empty or new directory for the node`, { nodePath });
    }
    const lock = await NodeLock.acquire(nodePath, { waitMs: 0 });
    try {
      // A store without a key file is left from an interrupted init: nothing can read it.
      fs.rmSync(`${nodePath}/${STORE_FILE}`, { force: true });
      const keys = new NodeKeys(master);
      const info: NodeInfo = {
        nodeId: await nodeIdFromPublicKey(keys.identity.publicKeyRaw),
        publicKey: keys.identity.publicKeyRaw.toString('base64url'),
        createdAt: new Date().toISOString(),
      };
      LogStore.create(nodePath);
      const store = LogStore.open(nodePath, keys.storeBatchKey);
      const nodeKeyspace = new Keyspace(keys.nodeKeyspaceSecret);
      store.write([{ keyspace: nodeKeyspace, name: NODE_INFO_RECORD, value: Buffer.from(JSON.stringify(info)) }, ...VaultManager.initialOps(nodeKeyspace)]);
      // The key file is written last: its presence is what makes the directory a node.
      await writeKeyFile(nodePath, master, password, kdf);
      return new KeynodeNode(nodePath, keys, store, lock, info);
    } catch (error) {
      lock.release();
      throw fromSystemError(error, `creating the node at ${nodePath}`);
    } finally {
      password.fill(0);
    }
  }

  /** Unlock and open the node at `nodePath`. */
  static async open(options: OpenNodeOptions): Promise<KeynodeNode> {
    const { nodePath } = options;
    if (!keyFileExists(nodePath)) throw new KeynodeError('ERR_NODE_NOT_FOUND', `no keynode node at ${nodePath} (run "keynode init")`, { nodePath });
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
      const store = LogStore.open(nodePath, keys.storeBatchKey);
      const raw = store.get(new Keyspace(keys.nodeKeyspaceSecret), NODE_INFO_RECORD);
      if (!raw) {
        store.close();
        throw new KeynodeError('ERR_INTEGRITY', `node ${nodePath} is missing its identity record`, { nodePath });
      }
      return new KeynodeNode(nodePath, keys, store, lock, JSON.parse(raw.toString('utf8')) as NodeInfo);
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
  static async recover(options: CreateNodeOptions & { recoveryPhrase: string }): Promise<{ nodeId: string; existing: boolean }> {
    const master = phraseToMasterSecret(options.recoveryPhrase);
    if (!master) throw new KeynodeError('ERR_INVALID_PHRASE', 'the recovery phrase is not 24 valid words (check spelling and order)');
    try {
      if (!keyFileExists(options.nodePath)) {
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
      const nodeId = await nodeIdFromPublicKey(keys.identity.publicKeyRaw);
      keys.wipe();
      return { nodeId, existing: true };
    } finally {
      master.fill(0);
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
    };
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
      if (this.store.shouldCompact) this.store.compact();
    } finally {
      this.store.close();
      this.keys.wipe();
      if (!options.keepLock) this.lock.release();
    }
  }
}
