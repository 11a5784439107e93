import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layers of docs/architecture.md, checked on the source: every import (static, dynamic,
 * type-only, re-export) of one of our modules must point down, and no module may reach itself
 * again through its imports. Same rank, other folder = siblings that must not know each other
 * (agent/ and client/ meet only in api/ and ipc/).
 */
const SRC = path.resolve(import.meta.dirname, '../../src');

/** Rank of each layer, bottom up. Root files (errors.ts, constants.ts, codec.ts, ids.ts, processes.ts) are the shared base. */
const RANK: Record<string, number> = {
  shared: 0,
  crypto: 1,
  storage: 2,
  keys: 3,
  vaults: 4,
  formats: 5,
  importers: 5,
  acl: 5,
  sigchain: 5,
  notifications: 5,
  network: 6,
  sync: 7,
  node: 8,
  api: 9,
  ipc: 9,
  agent: 10,
  client: 10,
  cli: 11,
  web: 11,
  bench: 12,
  index: 12,
};

/** Edges that break the rule today, each with why it is tolerated; a new one fails the test. */
const KNOWN_EXCEPTIONS: Record<string, string> = {
  // writeFileAtomic (0600, fsynced) is a general file helper that happens to live in storage/.
  'cli/commands/secrets/inject.ts -> storage/files.ts': 'writeFileAtomic for an output file',
  'cli/commands/vaults/export.ts -> storage/files.ts': 'writeFileAtomic for an output file',
  'client/sessionFile.ts -> storage/files.ts': 'writeFileAtomic for the session file',
};

function layerOf(file: string): string {
  const relative = path.relative(SRC, file);
  if (relative === 'index.ts') return 'index';
  return relative.includes(path.sep) ? relative.split(path.sep)[0]! : 'shared';
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'";]*?from\s*'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)|^import\s+'(\.[^']+)'/gm;

function importsOf(file: string): string[] {
  const source = fs.readFileSync(file, 'utf8');
  return [...source.matchAll(IMPORT)].map((m) => path.resolve(path.dirname(file), (m[1] ?? m[2] ?? m[3])!).replace(/\.js$/, '.ts'));
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((file) => [file, importsOf(file)]));
const name = (file: string) => path.relative(SRC, file).split(path.sep).join('/');

describe('architecture: layers', () => {
  it('knows the layer of every folder under src/', () => {
    const unknown = [...new Set(files.map(layerOf))].filter((layer) => !(layer in RANK));
    expect(unknown, 'add new folders to RANK here and to docs/architecture.md').toEqual([]);
  });

  it('resolves every relative import to a file', () => {
    const missing = [...graph].flatMap(([file, targets]) => targets.filter((t) => !fs.existsSync(t)).map((t) => `${name(file)} -> ${name(t)}`));
    expect(missing).toEqual([]);
  });

  it('has imports that only point down (crypto/ imports nothing of ours)', () => {
    const forbidden: string[] = [];
    for (const [file, targets] of graph) {
      const from = layerOf(file);
      for (const target of targets) {
        const to = layerOf(target);
        if (to === from) continue;
        const edge = `${name(file)} -> ${name(target)}`;
        const down = from === 'crypto' ? false : RANK[to]! < RANK[from]!;
        if (!down && !(edge in KNOWN_EXCEPTIONS)) forbidden.push(`${edge} (${from} ${RANK[from]} → ${to} ${RANK[to]})`);
      }
    }
    expect(forbidden).toEqual([]);
  });

  it('has no import cycle between modules', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const stack: string[] = [];
    const visit = (file: string) => {
      state.set(file, 'visiting');
      stack.push(file);
      for (const target of graph.get(file) ?? []) {
        if (!graph.has(target)) continue;
        if (state.get(target) === 'visiting') cycles.push([...stack.slice(stack.indexOf(target)), target].map(name).join(' -> '));
        else if (!state.has(target)) visit(target);
      }
      stack.pop();
      state.set(file, 'done');
    };
    for (const file of files) if (!state.has(file)) visit(file);
    expect(cycles).toEqual([]);
  });

  it('keeps the known exceptions real (remove one once fixed)', () => {
    const edges = new Set([...graph].flatMap(([file, targets]) => targets.map((t) => `${name(file)} -> ${name(t)}`)));
    expect(Object.keys(KNOWN_EXCEPTIONS).filter((edge) => !edges.has(edge))).toEqual([]);
  });
});
