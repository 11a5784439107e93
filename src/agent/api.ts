import { KeynodeError } from '../errors.js';
import type { KeynodeNode } from '../node/KeynodeNode.js';
import { copyBetweenVaults } from '../vaults/transfer.js';
import { normalizeSecretPath } from '../vaults/paths.js';
import type { Vault, WriteResult } from '../vaults/Vault.js';
import { absolutePath, arrayOf, base64, boolean, count, object, optional, string, type Check } from './schema.js';

/**
 * The client API (version 1): every operation the CLI performs on a node, as JSON-safe
 * methods. The agent serves them on its socket; the CLI without an agent calls the same
 * handlers in process. One table, so both paths give the same results and the same errors.
 * Binary values travel as base64. Documented in docs/api.md.
 */
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const bytes = (value: string) => Buffer.from(value, 'base64');

interface Ref {
  vault: string;
  path: string;
}
const ref = object({ vault: string, path: string });

async function vaultOf(node: KeynodeNode, name: string): Promise<Vault> {
  return node.vaults.openVault(name);
}

/** All secrets under `path` (or the secret itself), with paths relative to it ('' for the secret itself). */
async function collect(vault: Vault, path: string, version?: string): Promise<Array<{ path: string; value: string }>> {
  const normalized = normalizeSecretPath(path, { allowRoot: true });
  const entries = await vault.list(normalized, { version });
  const out: Array<{ path: string; value: string }> = [];
  for (const entry of entries) {
    if (entry.type !== 'secret') continue;
    const relative = entry.path === normalized ? '' : normalized === '' ? entry.path : entry.path.slice(normalized.length + 1);
    out.push({ path: relative, value: b64(await vault.readSecret(entry.path, { version })) });
  }
  return out;
}

interface Method<P, R> {
  params: Check;
  run: (node: KeynodeNode, params: P) => Promise<R>;
}

function method<P, R>(params: Record<string, Check>, run: (node: KeynodeNode, params: P) => Promise<R>): Method<P, R> {
  return { params: object(params), run };
}

export const API = {
  'node.status': method({}, async (node) => node.status()),
  'node.check': method({}, async (node) => node.check()),

  'vaults.list': method({ tag: optional(string) }, async (node, p: { tag?: string }) => ({ vaults: node.vaults.listVaults({ tag: p.tag }) })),
  'vaults.create': method({ name: string }, async (node, p: { name: string }) => ({ name: p.name, commit: (await node.vaults.createVault(p.name)).headCommit })),
  'vaults.rename': method({ name: string, newName: string }, async (node, p: { name: string; newName: string }) => {
    await node.vaults.renameVault(p.name, p.newName);
    return { name: p.newName, previousName: p.name };
  }),
  'vaults.delete': method({ name: string }, async (node, p: { name: string }) => {
    const { purged } = await node.vaults.deleteVault(p.name);
    return { name: p.name, deleted: true, purged };
  }),
  'vaults.tag': method({ name: string, tag: string }, async (node, p: { name: string; tag: string }) => node.vaults.tagVault(p.name, p.tag)),
  'vaults.untag': method({ name: string, tag: string }, async (node, p: { name: string; tag: string }) => node.vaults.untagVault(p.name, p.tag)),
  'vaults.log': method({ name: string, path: optional(string), limit: optional(count) }, async (node, p: { name: string; path?: string; limit?: number }) => ({
    vault: p.name,
    commits: await (await vaultOf(node, p.name)).log({ path: p.path, limit: p.limit }),
  })),
  'vaults.diff': method(
    { name: string, from: string, to: string, values: optional(boolean) },
    async (node, p: { name: string; from: string; to: string; values?: boolean }) => {
      const changes = await (await vaultOf(node, p.name)).diff(p.from, p.to, { values: p.values });
      return {
        changes: changes.map((c) => ({
          path: c.path,
          status: c.status,
          ...(p.values ? { before: c.before ? b64(c.before) : null, after: c.after ? b64(c.after) : null } : {}),
        })),
      };
    },
  ),
  'vaults.revert': method({ name: string, commit: string, message: optional(string) }, async (node, p: { name: string; commit: string; message?: string }) =>
    (await vaultOf(node, p.name)).revert(p.commit, { message: p.message }),
  ),
  'vaults.exportBundle': method({ name: string, file: absolutePath }, async (node, p: { name: string; file: string }) => (await vaultOf(node, p.name)).exportBundle(p.file)),
  'vaults.import': method(
    { name: string, entries: arrayOf(object({ path: string, value: base64 })), message: string },
    async (node, p: { name: string; entries: Array<{ path: string; value: string }>; message: string }) =>
      (await vaultOf(node, p.name)).writeSecrets(
        p.entries.map((e) => ({ path: e.path, value: bytes(e.value) })),
        { message: p.message },
      ),
  ),

  'secrets.get': method({ vault: string, path: string, version: optional(string) }, async (node, p: Ref & { version?: string }) => ({
    value: b64(await (await vaultOf(node, p.vault)).readSecret(p.path, { version: p.version })),
  })),
  'secrets.collect': method(
    { items: arrayOf(object({ vault: string, path: string, version: optional(string) })) },
    async (node, p: { items: Array<Ref & { version?: string }> }) => ({
      items: await Promise.all(p.items.map(async (item) => ({ ...item, entries: await collect(await vaultOf(node, item.vault), item.path, item.version) }))),
    }),
  ),
  'secrets.set': method(
    { vault: string, path: string, value: base64, message: optional(string) },
    async (node, p: Ref & { value: string; message?: string }): Promise<WriteResult> =>
      (await vaultOf(node, p.vault)).writeSecret(p.path, bytes(p.value), { message: p.message }),
  ),
  'secrets.ls': method({ vault: string, path: string, version: optional(string) }, async (node, p: Ref & { version?: string }) => ({
    entries: await (await vaultOf(node, p.vault)).list(p.path, { version: p.version }),
  })),
  'secrets.rm': method({ vault: string, path: string, recursive: optional(boolean), message: optional(string) }, async (node, p: Ref & { recursive?: boolean; message?: string }) =>
    (await vaultOf(node, p.vault)).remove(p.path, { recursive: p.recursive, message: p.message }),
  ),
  'secrets.mkdir': method({ vault: string, path: string, message: optional(string) }, async (node, p: Ref & { message?: string }) =>
    (await vaultOf(node, p.vault)).makeDir(p.path, { message: p.message }),
  ),
  'secrets.stat': method({ vault: string, path: string }, async (node, p: Ref) => (await vaultOf(node, p.vault)).stat(p.path)),
  'secrets.transfer': method(
    { kind: string, from: ref, to: ref, overwrite: optional(boolean), message: optional(string) },
    async (node, p: { kind: string; from: Ref; to: Ref; overwrite?: boolean; message?: string }): Promise<WriteResult> => {
      if (p.kind !== 'move' && p.kind !== 'copy') throw new KeynodeError('ERR_INVALID_REQUEST', 'invalid request: params.kind must be "move" or "copy"');
      const source = await vaultOf(node, p.from.vault);
      if (p.from.vault === p.to.vault) {
        const options = { overwrite: p.overwrite, message: p.message };
        return p.kind === 'move' ? source.move(p.from.path, p.to.path, options) : source.copy(p.from.path, p.to.path, options);
      }
      const done = await copyBetweenVaults(source, p.from.path, await vaultOf(node, p.to.vault), p.to.path, { overwrite: p.overwrite, move: p.kind === 'move' });
      return done.target;
    },
  ),
} as const;

export type Api = typeof API;
export type MethodName = keyof Api;
export type ParamsOf<M extends MethodName> = Parameters<Api[M]['run']>[1];
export type ResultOf<M extends MethodName> = Awaited<ReturnType<Api[M]['run']>>;

export function isMethodName(name: unknown): name is MethodName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(API, name);
}

/** Validate and run one method on an open node. */
export async function dispatch(node: KeynodeNode, name: MethodName, params: unknown): Promise<unknown> {
  const entry = API[name] as Method<unknown, unknown>;
  entry.params(params ?? {}, 'params');
  return entry.run(node, params ?? {});
}
