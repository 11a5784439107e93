import type { KeynodeNode } from '../node/KeynodeNode.js';
import { copyBetweenVaults } from '../vaults/transfer.js';
import { normalizeSecretPath } from '../vaults/paths.js';
import type { Vault } from '../vaults/Vault.js';
import { METHODS, type OwnerMethod, type ParamsOf, type ResultOf } from './contract.js';
import { validateRequest } from './schema.js';
import { UPLOAD_CHUNK_MAX_BYTES } from '../constants.js';
import { KeynodeError } from '../errors.js';
import { STREAM_RESULTS, type StreamItems, type StreamMethod, type UploadMethod } from './streams.js';

/**
 * The owner API's handlers: each method of api/contract.ts that works on the node, over an
 * open node. The agent serves them; the CLI without an agent calls them in process. One table,
 * so both paths give the same results and the same errors. Binary values travel as base64.
 */
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const bytes = (value: string) => Buffer.from(value, 'base64');

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

type Handlers = { [M in OwnerMethod]: (node: KeynodeNode, params: ParamsOf<M>) => Promise<ResultOf<M>> };
type StreamHandlers = { [M in StreamMethod]: (node: KeynodeNode, params: ParamsOf<M>) => AsyncGenerator<Array<StreamItems[M]>, void, undefined> };

/** The streamed methods' items, in pages: the agent sends them in frames, LocalClient yields them. */
export const STREAM_HANDLERS: StreamHandlers = {
  'secrets.ls': async function* (node, p) {
    yield* (await vaultOf(node, p.vault)).listPages(p.path, { version: p.version });
  },
  'vaults.log': async function* (node, p) {
    yield* (await vaultOf(node, p.name)).logPages({ path: p.path, limit: p.limit });
  },
  // One piece per frame (binary), as the value's chunks come: the agent holds a chunk or two, whatever the size.
  'secrets.getStream': async function* (node, p) {
    for await (const piece of (await vaultOf(node, p.vault)).readSecretStream(p.path, { version: p.version })) yield [piece];
  },
};

/**
 * Methods that take a streamed request body: `source` yields the value's bytes as they arrive
 * (from the socket through the agent, or from a file in process). Nothing is committed unless
 * the source ends normally with the declared size.
 */
export const UPLOAD_HANDLERS: { [M in UploadMethod]: (node: KeynodeNode, params: ParamsOf<M>, source: AsyncIterable<Uint8Array>) => Promise<ResultOf<M>> } = {
  'secrets.setStream': async (node, p, source) => (await vaultOf(node, p.vault)).writeSecretStream(p.path, source, { size: p.size, message: p.message }),
};

/** Validate params, then run an upload method on an open node, fed by `source`. */
export async function dispatchUpload<M extends UploadMethod>(
  node: KeynodeNode,
  name: M,
  params: unknown,
  source: AsyncIterable<Uint8Array>,
): Promise<ResultOf<M>> {
  const checked = validateRequest<unknown>(METHODS[name].params, params ?? {}, 'params') as ParamsOf<M>;
  return UPLOAD_HANDLERS[name](node, checked, source);
}

/** The bound on one piece of a streamed body, checked before it is decoded. */
export function decodeBodyPiece(piece: unknown): Buffer {
  if (
    typeof piece !== 'string' ||
    piece.length > Math.ceil(UPLOAD_CHUNK_MAX_BYTES / 3) * 4 ||
    piece.length % 4 !== 0 ||
    !/^[A-Za-z0-9+/]*={0,2}$/.test(piece)
  ) {
    throw new KeynodeError('ERR_INVALID_REQUEST', `invalid request: a body chunk must be base64 of at most ${UPLOAD_CHUNK_MAX_BYTES / 1024 / 1024} MiB`);
  }
  return Buffer.from(piece, 'base64');
}

/** A streamed method's whole result (for `call`): every item, then the result's shape. */
async function collected<M extends StreamMethod>(node: KeynodeNode, name: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
  const items: Array<StreamItems[M]> = [];
  for await (const page of STREAM_HANDLERS[name](node, params)) for (const item of page) items.push(item);
  return (STREAM_RESULTS[name] as (params: ParamsOf<M>, items: Array<StreamItems[M]>) => ResultOf<M>)(params, items);
}

export const HANDLERS: Handlers = {
  'node.status': async (node) => node.status(),
  'node.check': async (node) => node.check(),

  'vaults.list': async (node, p) => ({ vaults: node.vaults.listVaults({ tag: p.tag }) }),
  'vaults.create': async (node, p) => ({ name: p.name, commit: (await node.vaults.createVault(p.name)).headCommit }),
  'vaults.rename': async (node, p) => {
    await node.vaults.renameVault(p.name, p.newName);
    return { name: p.newName, previousName: p.name };
  },
  'vaults.delete': async (node, p) => {
    const { purged } = await node.vaults.deleteVault(p.name);
    return { name: p.name, deleted: true, purged };
  },
  'vaults.tag': async (node, p) => node.vaults.tagVault(p.name, p.tag),
  'vaults.untag': async (node, p) => node.vaults.untagVault(p.name, p.tag),
  'vaults.log': async (node, p) => collected(node, 'vaults.log', p),
  'vaults.diff': async (node, p) => {
    const changes = await (await vaultOf(node, p.name)).diff(p.from, p.to, { values: p.values });
    return {
      changes: changes.map((c) => ({
        path: c.path,
        status: c.status,
        ...(p.values ? { before: c.before ? b64(c.before) : null, after: c.after ? b64(c.after) : null } : {}),
      })),
    };
  },
  'vaults.revert': async (node, p) => (await vaultOf(node, p.name)).revert(p.commit, { message: p.message }),
  'vaults.exportBundle': async (node, p) => (await vaultOf(node, p.name)).exportBundle(p.file),
  'vaults.import': async (node, p) =>
    (await vaultOf(node, p.name)).writeSecrets(
      p.entries.map((e) => ({ path: e.path, value: bytes(e.value) })),
      { message: p.message },
    ),

  'secrets.get': async (node, p) => ({ value: b64(await (await vaultOf(node, p.vault)).readSecret(p.path, { version: p.version })) }),
  'secrets.collect': async (node, p) => ({
    items: await Promise.all(p.items.map(async (item) => ({ ...item, entries: await collect(await vaultOf(node, item.vault), item.path, item.version) }))),
  }),
  'secrets.set': async (node, p) => (await vaultOf(node, p.vault)).writeSecret(p.path, bytes(p.value), { message: p.message }),
  'secrets.getStream': async (node, p) => collected(node, 'secrets.getStream', p),
  'secrets.setStream': async () => {
    throw new KeynodeError('ERR_INVALID_REQUEST', 'invalid request: secrets.setStream takes a streamed body (docs/api.md)');
  },
  'secrets.ls': async (node, p) => collected(node, 'secrets.ls', p),
  'secrets.rm': async (node, p) => (await vaultOf(node, p.vault)).remove(p.path, { recursive: p.recursive, message: p.message }),
  'secrets.mkdir': async (node, p) => (await vaultOf(node, p.vault)).makeDir(p.path, { message: p.message }),
  'secrets.stat': async (node, p) => (await vaultOf(node, p.vault)).stat(p.path),
  'secrets.transfer': async (node, p) => {
    const source = await vaultOf(node, p.from.vault);
    if (p.from.vault === p.to.vault) {
      const options = { overwrite: p.overwrite, message: p.message };
      return p.kind === 'move' ? source.move(p.from.path, p.to.path, options) : source.copy(p.from.path, p.to.path, options);
    }
    const done = await copyBetweenVaults(source, p.from.path, await vaultOf(node, p.to.vault), p.to.path, { overwrite: p.overwrite, move: p.kind === 'move' });
    return done.target;
  },
};

/** Validate params against the method's schema, then run it on an open node. */
export async function dispatch<M extends OwnerMethod>(node: KeynodeNode, name: M, params: unknown): Promise<ResultOf<M>> {
  const checked = validateRequest(METHODS[name].params, params ?? {}, 'params') as ParamsOf<M>;
  const handler = HANDLERS[name] as (node: KeynodeNode, params: ParamsOf<M>) => Promise<ResultOf<M>>;
  return handler(node, checked);
}

/** Validate params (on the first `next()`), then yield a streamed method's items, in pages, from an open node. */
export async function* dispatchStream<M extends StreamMethod>(
  node: KeynodeNode,
  name: M,
  params: unknown,
): AsyncGenerator<Array<StreamItems[M]>, void, undefined> {
  const checked = validateRequest<unknown>(METHODS[name].params, params ?? {}, 'params') as ParamsOf<M>;
  yield* STREAM_HANDLERS[name](node, checked);
}
