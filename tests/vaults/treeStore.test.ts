import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isKeynodeError } from '../../src/errors.js';
import { encodeTree } from '../../src/vaults/gitObjects.js';
import { objectRecordName, readWrappedObject } from '../../src/vaults/objectRecords.js';
import { CompactTree, type TreeEntry, type TreeRecordInfo } from '../../src/vaults/trees.js';
import { isTreeDelta, loadStoredTree, maxChainDepth, writeStoredTree } from '../../src/vaults/treeStore.js';

const oidOf = (n: number) => n.toString(16).padStart(40, '0');
const blob = (n: number): TreeEntry => ({ mode: '100644', type: 'blob', oid: oidOf(n) });

/** Records by oid, as a vault keyspace holds them, and what the writer knows of each. */
class Records {
  readonly stored = new Map<string, Buffer>();
  readonly known = new Map<string, TreeRecordInfo>();

  write(baseOid: string | null, base: CompactTree, changes: Map<string, TreeEntry | null>) {
    const written = writeStoredTree({
      edit: { baseOid, base, changes },
      hasRecord: (oid) => this.stored.has(oid),
      readRecord: (oid) => this.stored.get(oid),
      putRecord: (oid, record) => this.stored.set(oid, record),
      knownRecord: (oid) => this.known.get(oid),
    });
    if (written.record) this.known.set(written.oid, written.record);
    return written;
  }

  load(oid: string, cached?: Map<string, CompactTree>) {
    return loadStoredTree({ oid, readRecord: (id) => this.stored.get(id), cached: (id) => cached?.get(id) });
  }
}

function expectIntegrity(run: () => unknown): void {
  try {
    run();
  } catch (error) {
    expect(isKeynodeError(error, 'ERR_INTEGRITY'), String(error)).toBe(true);
    return;
  }
  expect.fail('expected ERR_INTEGRITY');
}

/** A directory of `size` entries written whole, then `edits` single-entry commits on top. */
function history(size: number, edits: number) {
  const records = new Records();
  const model = new Map(Array.from({ length: size }, (_, i): [string, TreeEntry] => [`s${i}`, blob(i)]));
  let { oid, tree } = records.write(null, CompactTree.EMPTY, new Map(model));
  const versions = [{ oid, model: new Map(model) }];
  for (let k = 0; k < edits; k++) {
    const change = new Map<string, TreeEntry | null>([[`s${k % (size + 5)}`, k % 7 === 3 ? null : blob(10_000 + k)]]);
    ({ oid, tree } = records.write(oid, tree, change));
    for (const [name, entry] of change) {
      if (entry) model.set(name, entry);
      else model.delete(name);
    }
    versions.push({ oid, model: new Map(model) });
  }
  return { records, versions };
}

describe('trees stored as deltas', () => {
  it('every version of any edit sequence reads back as the model, cached or not (property)', () => {
    const name = fc.constantFrom('a', 'b', 'c', 'a-b', 'a.b', 'd', 'e', 'f', 'g', 'h');
    const change = fc.tuple(name, fc.option(fc.tuple(fc.boolean(), fc.nat(50)), { nil: null }));
    let deltas = 0;
    fc.assert(
      fc.property(fc.array(fc.array(change, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 60 }), fc.nat(), (commits, seed) => {
        const records = new Records();
        const model = new Map<string, TreeEntry>();
        let base: { oid: string | null; tree: CompactTree } = { oid: null, tree: CompactTree.EMPTY };
        const versions: Array<{ oid: string; model: Map<string, TreeEntry> }> = [];
        for (const [n, commit] of commits.entries()) {
          // A directory big enough that small edits are stored as deltas (an eighth of it per chain).
          const changes = new Map<string, TreeEntry | null>(n === 0 ? Array.from({ length: 200 }, (_, i) => [`z${i}`, blob(i)]) : []);
          for (const [key, value] of commit) {
            const entry: TreeEntry | null = value === null ? null : value[0] ? { mode: '040000', type: 'tree', oid: oidOf(value[1]) } : blob(value[1]);
            changes.set(key, entry);
          }
          const written = records.write(base.oid, base.tree, changes);
          for (const [key, value] of changes) {
            if (value) model.set(key, value);
            else model.delete(key);
          }
          expect(written.oid).toBe(encodeTree(model).oid);
          versions.push({ oid: written.oid, model: new Map(model) });
          base = { oid: written.oid, tree: written.tree };
          if (isTreeDelta(records.stored.get(written.oid)!)) deltas++;
        }
        // Read every version cold, and with a random earlier version cached.
        for (const [i, version] of versions.entries()) {
          const cold = records.load(version.oid).tree;
          expect(new Map(cold)).toEqual(version.model);
          const other = versions[seed % versions.length]!;
          const warm = records.load(version.oid, new Map([[other.oid, records.load(other.oid).tree]])).tree;
          expect(warm.oid()).toBe(version.oid);
          const wrapped = readWrappedObject((recordName) => records.stored.get(recordName.slice(4)), version.oid)!;
          expect(wrapped.equals(encodeTree(version.model).wrapped), `version ${i}`).toBe(true);
        }
      }),
      { numRuns: 60 },
    );
    expect(deltas).toBeGreaterThan(100); // the runs did exercise delta chains
  });

  it('a single change in a large directory stores a small delta, and chains end at the bound with a snapshot', () => {
    const size = 5_000;
    const { records, versions } = history(size, maxChainDepth(size) + 3);
    const sizes = versions.map((v) => records.stored.get(v.oid)?.length ?? 0);
    expect(isTreeDelta(records.stored.get(versions[0]!.oid)!)).toBe(false);
    expect(Math.max(...sizes.slice(1, maxChainDepth(size)))).toBeLessThan(200);
    const depths = versions.map((v) => records.known.get(v.oid)?.depth);
    expect(Math.max(...depths.map((d) => d ?? 0))).toBe(maxChainDepth(size));
    expect(depths[maxChainDepth(size) + 1]).toBe(0); // the next version is a new snapshot
    expect(new Map(records.load(versions.at(-1)!.oid).tree)).toEqual(versions.at(-1)!.model);
    expect(new Map(records.load(versions[maxChainDepth(size)]!.oid).tree)).toEqual(versions[maxChainDepth(size)]!.model);
  });

  it('a damaged delta or a damaged, missing or swapped base is ERR_INTEGRITY, never a wrong tree', () => {
    const { records, versions } = history(500, 10);
    const last = versions.at(-1)!.oid;
    const delta = records.stored.get(last)!;
    expect(isTreeDelta(delta)).toBe(true);
    const pristine = new Map(records.stored);
    const damage = (mutate: () => void) => {
      records.stored.clear();
      for (const [k, v] of pristine) records.stored.set(k, Buffer.from(v));
      mutate();
      expectIntegrity(() => records.load(last));
      expectIntegrity(() => readWrappedObject((recordName) => records.stored.get(recordName.slice(4)), last));
    };
    // A changed id in the delta's entries, a changed name, a truncated delta.
    damage(() => records.stored.get(last)!.writeUInt8(records.stored.get(last)!.at(-1)! ^ 1, delta.length - 1));
    damage(() => records.stored.set(last, delta.subarray(0, delta.length - 5)));
    // The whole snapshot at the chain's start altered (still a well-formed tree).
    damage(() => {
      const snapshot = records.stored.get(versions[0]!.oid)!;
      snapshot.writeUInt8(snapshot.at(-1)! ^ 1, snapshot.length - 1);
    });
    // A link missing, or replaced by another version's record.
    damage(() => records.stored.delete(versions[5]!.oid));
    damage(() => records.stored.set(versions[5]!.oid, pristine.get(versions[3]!.oid)!));
    // A delta whose base is itself (a cycle).
    damage(() => {
      const looped = Buffer.from(delta);
      looped.write(last, 22, 'hex');
      records.stored.set(last, looped);
    });
  });

  it('plain whole-tree records (every node before deltas) still open, and a damaged one is ERR_INTEGRITY', () => {
    const model = new Map([
      ['a', blob(1)],
      ['b', blob(2)],
    ]);
    const plain = encodeTree(model);
    const stored = new Map([[objectRecordName(plain.oid), plain.wrapped]]);
    expect(new Map(loadStoredTree({ oid: plain.oid, readRecord: (id) => stored.get(objectRecordName(id)) }).tree)).toEqual(model);
    expect(readWrappedObject((recordName) => stored.get(recordName), plain.oid)!.equals(plain.wrapped)).toBe(true);
    const flipped = Buffer.from(plain.wrapped);
    flipped[flipped.length - 1]! ^= 1;
    expectIntegrity(() => loadStoredTree({ oid: plain.oid, readRecord: () => flipped }));
  });
});
