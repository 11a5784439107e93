import type { KeynodeNode, NodeStatus } from '../node/KeynodeNode.js';
import type { NodeId } from '../ids.js';
import type { CommitInfo, DiffEntry, SecretEntry, SecretStat, WriteResult } from '../vaults/Vault.js';
import type { VaultSummary } from '../vaults/VaultManager.js';
import { absolutePath, arrayOf, base64, boolean, count, exactlyOne, object, oneOf, optional, string, type Check, type Infer } from './schema.js';

/**
 * The owner API (version 1), as a contract: every method's name, who may call it, the schema
 * of its params and the type of its result. The agent serves it on its socket (agent/), the
 * CLI without an agent runs the same handlers in process (api/handlers.ts), and clients
 * (client/) type their calls with it. Param types are derived from the schemas, so a method's
 * params are declared once. Documented in docs/api.md. Peers never reach this API.
 *
 * `auth`: 'session' methods need a valid session token and an unlocked node; 'token' methods
 * take a token but check it themselves; 'none' methods need no token (whoever can reach the
 * socket, the node's owner, may always lock, stop or unlock).
 *
 * `secrets.ls` and `vaults.log` reply in a stream of frames (api/streams.ts); their entry in
 * `Results` is the whole result as `call` assembles it.
 */
type Auth = 'session' | 'token' | 'none';
interface MethodSpec {
  readonly params: Check<unknown>;
  readonly auth: Auth;
}

const ref = object({ vault: string, path: string });
const none = object({});

export const METHODS = {
  'session.unlock': { params: exactlyOne({ password: string, passwordBase64: string }), auth: 'none' },
  'session.refresh': { params: none, auth: 'token' },
  'agent.status': { params: none, auth: 'none' },
  'agent.lock': { params: none, auth: 'none' },
  'agent.stop': { params: none, auth: 'none' },
  'agent.cancel': { params: object({ id: count }), auth: 'none' },

  'node.status': { params: none, auth: 'session' },
  'node.check': { params: none, auth: 'session' },

  'vaults.list': { params: object({ tag: optional(string) }), auth: 'session' },
  'vaults.create': { params: object({ name: string }), auth: 'session' },
  'vaults.rename': { params: object({ name: string, newName: string }), auth: 'session' },
  'vaults.delete': { params: object({ name: string }), auth: 'session' },
  'vaults.tag': { params: object({ name: string, tag: string }), auth: 'session' },
  'vaults.untag': { params: object({ name: string, tag: string }), auth: 'session' },
  'vaults.log': { params: object({ name: string, path: optional(string), limit: optional(count) }), auth: 'session' },
  'vaults.diff': { params: object({ name: string, from: string, to: string, values: optional(boolean) }), auth: 'session' },
  'vaults.revert': { params: object({ name: string, commit: string, message: optional(string) }), auth: 'session' },
  'vaults.exportBundle': { params: object({ name: string, file: absolutePath }), auth: 'session' },
  'vaults.import': { params: object({ name: string, entries: arrayOf(object({ path: string, value: base64 })), message: string }), auth: 'session' },

  'secrets.get': { params: object({ vault: string, path: string, version: optional(string) }), auth: 'session' },
  'secrets.collect': { params: object({ items: arrayOf(object({ vault: string, path: string, version: optional(string) })) }), auth: 'session' },
  'secrets.set': { params: object({ vault: string, path: string, value: base64, message: optional(string) }), auth: 'session' },
  /** A value of any size, read as a stream of base64 chunks (api/streams.ts). */
  'secrets.getStream': { params: object({ vault: string, path: string, version: optional(string) }), auth: 'session' },
  /** A value of any size, written from a streamed request body (docs/api.md, "Streamed request bodies"). */
  'secrets.setStream': { params: object({ vault: string, path: string, size: optional(count), message: optional(string) }), auth: 'session' },
  'secrets.ls': { params: object({ vault: string, path: string, version: optional(string) }), auth: 'session' },
  'secrets.rm': { params: object({ vault: string, path: string, recursive: optional(boolean), message: optional(string) }), auth: 'session' },
  'secrets.mkdir': { params: object({ vault: string, path: string, message: optional(string) }), auth: 'session' },
  'secrets.stat': { params: object({ vault: string, path: string }), auth: 'session' },
  'secrets.transfer': {
    params: object({ kind: oneOf('move', 'copy'), from: ref, to: ref, overwrite: optional(boolean), message: optional(string) }),
    auth: 'session',
  },
} as const satisfies Record<string, MethodSpec>;

export type MethodName = keyof typeof METHODS;
export type ParamsOf<M extends MethodName> = Infer<(typeof METHODS)[M]['params']>;
/** Methods on the node, run by api/handlers.ts (with or without an agent). */
export type OwnerMethod = { [M in MethodName]: (typeof METHODS)[M]['auth'] extends 'session' ? M : never }[MethodName];
/** Methods about the agent itself and sessions, run by the agent. */
export type AgentMethod = Exclude<MethodName, OwnerMethod>;

/** A session token and when it expires (ms since the epoch). */
export interface Session {
  token: string;
  expiresAt: number;
}

export interface AgentStatus {
  pid: number;
  nodePath: string;
  socket: string;
  locked: boolean;
  nodeId: NodeId | null;
  sessions: number;
  startedAt: string;
  idleTimeoutMs: number;
  sessionTtlMs: number;
}

/** Binary values as base64 (standard alphabet, padded). */
type Base64 = string;

/** What each method returns (the JSON on the wire). The handlers are checked against it. */
export interface Results {
  'session.unlock': Session;
  'session.refresh': Session;
  'agent.status': AgentStatus;
  'agent.lock': { locked: true };
  'agent.stop': { stopping: true };
  /** Stop a streamed reply of this connection (its request id); it ends with `end`. */
  'agent.cancel': { cancelled: boolean };
  'node.status': NodeStatus;
  'node.check': Awaited<ReturnType<KeynodeNode['check']>>;
  'vaults.list': { vaults: VaultSummary[] };
  'vaults.create': { name: string; commit: string };
  'vaults.rename': { name: string; previousName: string };
  'vaults.delete': { name: string; deleted: true; purged: boolean };
  'vaults.tag': VaultSummary;
  'vaults.untag': VaultSummary;
  'vaults.log': { vault: string; commits: CommitInfo[] };
  'vaults.diff': { changes: Array<{ path: string; status: DiffEntry['status']; before?: Base64 | null; after?: Base64 | null }> };
  'vaults.revert': WriteResult;
  'vaults.exportBundle': { commit: string; objects: number; bytes: number };
  'vaults.import': WriteResult;
  'secrets.get': { value: Base64 };
  'secrets.collect': { items: Array<ParamsOf<'secrets.collect'>['items'][number] & { entries: Array<{ path: string; value: Base64 }> }> };
  'secrets.set': WriteResult;
  'secrets.getStream': { value: Base64 };
  'secrets.setStream': WriteResult;
  'secrets.ls': { entries: SecretEntry[] };
  'secrets.rm': WriteResult;
  'secrets.mkdir': WriteResult;
  'secrets.stat': SecretStat;
  'secrets.transfer': WriteResult;
}

export type ResultOf<M extends MethodName> = Results[M];

export function isMethodName(name: unknown): name is MethodName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(METHODS, name);
}

export function isOwnerMethod(name: MethodName): name is OwnerMethod {
  return METHODS[name].auth === 'session';
}
