import { createHash } from 'node:crypto';
import type { TreeEntry } from './trees.js';

/**
 * Git object encoding for the write path. isomorphic-git's writeBlob/writeTree/writeCommit
 * produce the same bytes but go through WebCrypto and CompressionStream in Node, which costs
 * more than the rest of a commit; here hashing is one synchronous node:crypto call. Objects
 * are kept un-deflated ("type size\0content"): the store encrypts them anyway, and zlib would
 * cost more than the rest of a write (EncryptedGitFs deflates on demand for isomorphic-git).
 * Every encoder is checked against isomorphic-git's output (tests/vaults/gitObjects) and
 * against the git binary (git fsck on an exported bundle).
 */
export interface EncodedObject {
  oid: string;
  /** "type size\0content": the bytes whose SHA-1 is the object id. */
  wrapped: Buffer;
}

export interface CommitFields {
  tree: string;
  parents: readonly string[];
  author: { name: string; email: string; timestamp: number };
  message: string;
}

function encode(type: 'blob' | 'tree' | 'commit', content: Uint8Array): EncodedObject {
  const wrapped = Buffer.concat([Buffer.from(`${type} ${content.length}\0`, 'ascii'), content]);
  return { oid: createHash('sha1').update(wrapped).digest('hex'), wrapped };
}

export function encodeBlob(content: Uint8Array): EncodedObject {
  return encode('blob', content);
}

/**
 * Git orders tree entries by name bytes, comparing a directory as if its name ended in '/'.
 * For ASCII names JavaScript's string order is that byte order, and much cheaper than making
 * a Buffer per entry; any non-ASCII name switches the whole sort to UTF-8 bytes.
 */
function sortedEntries(entries: ReadonlyMap<string, TreeEntry>): Array<{ name: string; entry: TreeEntry }> {
  const list = [...entries].map(([name, entry]) => ({ name, entry, key: entry.type === 'tree' ? `${name}/` : name }));
  if (list.every((item) => /^[\x00-\x7f]*$/.test(item.key))) {
    return list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
  const bytes = new Map(list.map((item) => [item, Buffer.from(item.key, 'utf8')]));
  return list.sort((a, b) => Buffer.compare(bytes.get(a)!, bytes.get(b)!));
}

export function encodeTree(entries: ReadonlyMap<string, TreeEntry>): EncodedObject {
  const sorted = sortedEntries(entries);
  // One buffer for the whole object: "tree SIZE\0" then "MODE NAME\0" + 20-byte id per entry.
  let size = 0;
  for (const { name, entry } of sorted) size += (entry.type === 'tree' ? 5 : entry.mode.replace(/^0+/, '').length) + 1 + Buffer.byteLength(name) + 1 + 20;
  const header = `tree ${size}\0`;
  const wrapped = Buffer.allocUnsafe(header.length + size);
  let at = wrapped.write(header, 0, 'ascii');
  for (const { name, entry } of sorted) {
    at += wrapped.write(`${entry.type === 'tree' ? '40000' : entry.mode.replace(/^0+/, '')} ${name}\0`, at, 'utf8');
    at += wrapped.write(entry.oid, at, 'hex');
  }
  return { oid: createHash('sha1').update(wrapped).digest('hex'), wrapped };
}

export function encodeCommit(commit: CommitFields): EncodedObject {
  const person = `${commit.author.name} <${commit.author.email}> ${commit.author.timestamp} +0000`;
  const lines = [`tree ${commit.tree}`, ...commit.parents.map((p) => `parent ${p}`), `author ${person}`, `committer ${person}`, ''];
  const message = commit.message.endsWith('\n') ? commit.message : `${commit.message}\n`;
  return encode('commit', Buffer.from(`${lines.join('\n')}\n${message}`, 'utf8'));
}

/**
 * Entries of a tree object's content (after "tree SIZE\0"), as `encodeTree` writes them and
 * git reads them: "MODE NAME\0" and a 20-byte id, repeated. Returns null if malformed.
 */
export function parseTreeContent(content: Buffer): Map<string, TreeEntry> | null {
  const entries = new Map<string, TreeEntry>();
  let at = 0;
  while (at < content.length) {
    const space = content.indexOf(0x20, at);
    const nul = content.indexOf(0, space + 1);
    if (space < 0 || nul < 0 || nul + 21 > content.length) return null;
    const mode = content.toString('ascii', at, space);
    const name = content.toString('utf8', space + 1, nul);
    const isTree = mode === '40000' || mode === '040000';
    entries.set(name, { mode: isTree ? '040000' : mode.padStart(6, '0'), type: isTree ? 'tree' : 'blob', oid: content.toString('hex', nul + 1, nul + 21) });
    at = nul + 21;
  }
  return entries;
}
