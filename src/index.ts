/**
 * keynode as a library: the same operations as the CLI, in process.
 *
 * @example
 * ```ts
 * import { KeynodeNode } from 'keynode';
 * const { node, recoveryPhrase } = await KeynodeNode.create({ nodePath: '/tmp/my-node', password: 'correct horse' });
 * const vault = await node.vaults.createVault('prod');
 * await vault.writeSecret('db/password', Buffer.from('s3cret'));
 * (await vault.readSecret('db/password')).toString(); // 's3cret'
 * node.close();
 * ```
 */
export { KeynodeNode, DEFAULT_KDF } from './node/KeynodeNode.js';
export type { NodeStatus, OpenNodeOptions, CreateNodeOptions, Password } from './node/KeynodeNode.js';
export { resolveNodePath } from './node/nodePath.js';
export { VaultManager } from './vaults/VaultManager.js';
export type { VaultSummary } from './vaults/VaultManager.js';
export { Vault } from './vaults/Vault.js';
export type { CommitInfo, WriteResult, SecretEntry, SecretStat, DiffEntry, Edit } from './vaults/Vault.js';
export { parseSecretRef, normalizeSecretPath, validateVaultName } from './vaults/paths.js';
export type { SecretRef } from './vaults/paths.js';
export { KeynodeError, isKeynodeError, isErrorCode, ERROR_CODES } from './errors.js';
export type { ErrorCode, KeynodeErrorJSON } from './errors.js';
export { isNodeId, isVaultId, toNodeId, toVaultId } from './ids.js';
export type { NodeId, VaultId } from './ids.js';
export { generateSecret } from './vaults/generateSecret.js';
export type { GenerateOptions } from './vaults/generateSecret.js';
