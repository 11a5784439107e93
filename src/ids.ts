/**
 * Typed ids. A branded string is still a string at run time (JSON, logs, the wire), but the
 * compiler will not take a vault name where a vault id is meant, nor any string as a node id:
 * the only ways in are the checked constructors below (and their codecs for stored records).
 */
import { CodecError, type Check } from './codec.js';
import { KeynodeError } from './errors.js';

declare const brand: unique symbol;
type Branded<T, B extends string> = T & { readonly [brand]: B };

/** A vault's internal id: 16 random bytes as lowercase hex. Names change; ids never do. */
export type VaultId = Branded<string, 'VaultId'>;
/** A node's id: the libp2p peer id of its Ed25519 key (base58btc, "12D3KooW..."). */
export type NodeId = Branded<string, 'NodeId'>;

const VAULT_ID = /^[0-9a-f]{32}$/;
// An Ed25519 peer id: identity multihash of the protobuf public key, base58btc: 52 characters.
const NODE_ID = /^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/;

export function isVaultId(value: unknown): value is VaultId {
  return typeof value === 'string' && VAULT_ID.test(value);
}

export function isNodeId(value: unknown): value is NodeId {
  return typeof value === 'string' && NODE_ID.test(value);
}

export function toVaultId(value: string): VaultId {
  if (!isVaultId(value)) throw new KeynodeError('ERR_INVALID_ARGUMENT', 'not a vault id (32 lowercase hex digits)');
  return value;
}

export function toNodeId(value: string): NodeId {
  if (!isNodeId(value)) throw new KeynodeError('ERR_INVALID_ARGUMENT', `not a node id: ${JSON.stringify(value.slice(0, 60))}`);
  return value;
}

/** Codec checks, for records and messages that carry ids. */
export const vaultIdField: Check<VaultId> = (value, field) => {
  if (!isVaultId(value)) throw new CodecError(field, 'must be a vault id');
  return value;
};

export const nodeIdField: Check<NodeId> = (value, field) => {
  if (!isNodeId(value)) throw new CodecError(field, 'must be a node id');
  return value;
};
