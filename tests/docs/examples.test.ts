import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/index.js';

const DOC = path.resolve(import.meta.dirname, '../../docs/library.md');
const ENTRY = path.resolve(import.meta.dirname, '../../dist/index.js');

/** The ```ts example blocks of docs/library.md, with the expected output from their `// …` comments. */
function examples(): Array<{ code: string; expected: string[] }> {
  const text = fs.readFileSync(DOC, 'utf8');
  return [...text.matchAll(/```ts example\n([\s\S]*?)```/g)].map((match) => {
    const code = match[1]!;
    const expected = [...code.matchAll(/console\.log\(.*\); \/\/ (.+)$/gm)].map((m) => m[1]!);
    return { code, expected };
  });
}

describe('docs/library.md examples', () => {
  const blocks = examples();
  it('has examples', () => expect(blocks.length).toBeGreaterThanOrEqual(3));
  it.each(blocks.map((block, i) => [i + 1, block] as const))('example %i runs and prints what it says', (_i, block) => {
    const code = block.code.replace(/from 'keynode'/g, `from ${JSON.stringify(ENTRY)}`);
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', code], { env: { ...process.env, NODE_PATH_DIR: tempDir() }, encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    const lines = result.stdout.trim().split('\n');
    // Each `console.log(...); // text` line's text appears, in order, in the output.
    let cursor = 0;
    for (const expected of block.expected) {
      const at = lines.findIndex((line, index) => index >= cursor && line.includes(expected));
      expect(at, `expected output "${expected}" in:\n${result.stdout}`).toBeGreaterThanOrEqual(0);
      cursor = at + 1;
    }
  });
});
