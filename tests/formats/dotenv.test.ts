import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseDotenv, serializeDotenv, serializeShell } from '../../src/formats/dotenv.js';

const name = fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,15}$/);
const value = fc.string({ maxLength: 60 }).filter((s) => !s.includes('\0'));

describe('dotenv', () => {
  it('parses the usual forms', () => {
    const text = [
      '# a comment',
      '',
      'export A=1',
      'B = spaced value  # trailing comment',
      "C='single $NOT \\n literal'",
      'D="double\\nline \\"quoted\\" \\$HOME"',
      'E="really',
      'multi-line"',
      'F=',
    ].join('\n');
    expect(parseDotenv(text)).toEqual([
      { name: 'A', value: '1' },
      { name: 'B', value: 'spaced value' },
      { name: 'C', value: 'single $NOT \\n literal' },
      { name: 'D', value: 'double\nline "quoted" $HOME' },
      { name: 'E', value: 'really\nmulti-line' },
      { name: 'F', value: '' },
    ]);
  });

  it('reports the line of a malformed entry', () => {
    expect(() => parseDotenv('A=1\nnot an assignment\n')).toThrow(/line 2/);
    expect(() => parseDotenv('A="unterminated\n')).toThrow(/unterminated/);
  });

  it('round-trips any values through serialize and parse (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(name, value, { maxKeys: 8 }), (vars) => {
        const parsed = parseDotenv(serializeDotenv(vars));
        expect(Object.fromEntries(parsed.map((e) => [e.name, e.value]))).toEqual(vars);
      }),
    );
  });

  it('shell output evaluates to the exact values in a real sh (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(name.filter((n) => !['PATH', 'IFS', 'PS1', 'PS2', 'PS4', 'PWD', 'OLDPWD', 'HOME', 'ENV', 'OPTIND', 'SHELL', 'PPID'].includes(n)), value, { minKeys: 1, maxKeys: 4 }), (vars) => {
        const script = `${serializeShell(vars)}node -e 'const o={};for(const k of JSON.parse(process.argv[1]))o[k]=process.env[k];process.stdout.write(JSON.stringify(o))' '${JSON.stringify(Object.keys(vars))}'`;
        const out = execFileSync('sh', ['-c', script], { encoding: 'utf8' });
        expect(JSON.parse(out)).toEqual(vars);
      }),
      { numRuns: 15 },
    );
  });
});
