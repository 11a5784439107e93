import { hkdf } from '../crypto/kdf.js';
import { ed25519FromSeed, type SigningKeyPair } from '../crypto/signing.js';

/**
 * Everything a node derives from its 32-byte master secret (the secret the recovery phrase
 * encodes). Each key has its own HKDF label, so none can be computed from another.
 */
export class NodeKeys {
  readonly identity: SigningKeyPair;
  /** Authenticates the store's batches. */
  readonly storeBatchKey: Buffer;
  /** Secret of the keyspace holding the node's own records (vault registry, node info). */
  readonly nodeKeyspaceSecret: Buffer;

  constructor(masterSecret: Uint8Array) {
    this.identity = ed25519FromSeed(hkdf(masterSecret, 'keynode/identity/ed25519'));
    this.storeBatchKey = hkdf(masterSecret, 'keynode/store/batch-mac');
    this.nodeKeyspaceSecret = hkdf(masterSecret, 'keynode/keyspace/node');
  }

  /** Drop key material held in buffers we own (KeyObjects are released with the object). */
  wipe(): void {
    this.storeBatchKey.fill(0);
    this.nodeKeyspaceSecret.fill(0);
  }
}
