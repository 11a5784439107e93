import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseDotenv, serializeDotenv, serializeShell } from '../../src/formats/dotenv.js';
import { isKeynodeError } from '../../src/errors.js';
import { tempDir } from '../helpers/index.js';

const hasBash = spawnSync('bash', ['--version']).status === 0;

/** Characters a shell treats specially, so that generated values hit them often. */
const shellish = fc.string({
  unit: fc.constantFrom('`', '$', '"', '\\', "'", '\n', '\r', '\t', '(', ')', '{', '}', ' ', '!', '*', '?', '~', '#', ';', '&', '|', '<', '>', 'a', 'é', '😀'),
  maxLength: 40,
});
/** Any string an environment can hold: well-formed Unicode without NUL. */
const anyValue = fc.oneof(shellish, fc.string({ unit: 'binary', maxLength: 40 })).filter((s) => !s.includes('\0') && s.isWellFormed());

/** Source `text` in a real shell and read back each name's value, byte for byte. */
function sourceIn(shell: string, text: string, names: string[]): Record<string, string> {
  const dir = tempDir('keynode-dotenv-');
  const file = path.join(dir, 'vars.env');
  fs.writeFileSync(file, text);
  const script = `set -a; . "${file}"; ${names.map((n) => `printf '%s' "$${n}" | base64 | tr -d '\\n'; echo`).join('; ')}`;
  const lines = execFileSync(shell, ['-c', script], { cwd: dir, encoding: 'utf8' }).split('\n');
  expect(fs.readdirSync(dir)).toEqual(['vars.env']); // sourcing ran nothing that made a file
  return Object.fromEntries(names.map((n, i) => [n, Buffer.from(lines[i]!, 'base64').toString('utf8')]));
}

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

  it("never puts the file's text in a parse error, only the line", () => {
    const secret = 'hunter2-Zq9';
    const bad = [
      `A=1\n${secret}\n`, // no =
      `A="${secret}\nB=${secret}`, // unterminated, opened on line 1
      `A=${secret}\n9${secret}=1\n`, // a bad name made of secret text
      `A="${secret}"${secret}\n`, // text after the closing quote
      `A='${secret}`,
    ];
    for (const text of bad) {
      const error = (() => {
        try {
          parseDotenv(text);
        } catch (e) {
          return e;
        }
      })();
      expect(isKeynodeError(error, 'ERR_INVALID_ARGUMENT'), text).toBe(true);
      expect((error as Error).message).toMatch(/^\.env line \d+: /);
      expect((error as Error).message).not.toContain('hunter2');
      expect((error as Error).message).not.toContain('Zq9');
    }
    expect(() => parseDotenv('A=1\nB="x\ny\nC=2\n')).toThrow(/line 2: unterminated/);
  });

  it('writes values a shell sources without running anything (backticks, $( ), quotes)', () => {
    const vars = { A: '`touch pwned`', B: '$(touch pwned) ${HOME} $HOME', C: 'it\'s "quoted" \\ \\n', D: 'line one\nline two\r\n' };
    const text = serializeDotenv(vars);
    expect(text).toBe('A="\\`touch pwned\\`"\nB="\\$(touch pwned) \\${HOME} \\$HOME"\nC="it\'s \\"quoted\\" \\\\ \\\\n"\nD="line one\nline two\r\n"\n');
    expect(sourceIn('sh', text, Object.keys(vars))).toEqual(vars);
    expect(parseDotenv(text).map((e) => [e.name, e.value])).toEqual(Object.entries(vars));
  });

  it.each(['sh', ...(hasBash ? ['bash'] : [])])('dotenv output sourced in a real %s gives back exactly any value (property)', (shell) => {
    const names = fc.uniqueArray(fc.stringMatching(/^K_[A-Z0-9_]{0,8}$/), { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(
        names.chain((keys) => fc.tuple(fc.constant(keys), fc.array(anyValue, { minLength: keys.length, maxLength: keys.length }))),
        ([keys, values]) => {
          const vars = Object.fromEntries(keys.map((k, i) => [k, values[i]!]));
          expect(sourceIn(shell, serializeDotenv(vars), keys)).toEqual(vars);
        },
      ),
      { numRuns: 60 },
    );
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
      fc.property(
        fc.dictionary(
          name.filter((n) => !['PATH', 'IFS', 'PS1', 'PS2', 'PS4', 'PWD', 'OLDPWD', 'HOME', 'ENV', 'OPTIND', 'SHELL', 'PPID'].includes(n)),
          value,
          { minKeys: 1, maxKeys: 4 },
        ),
        (vars) => {
          const script = `${serializeShell(vars)}node -e 'const o={};for(const k of JSON.parse(process.argv[1]))o[k]=process.env[k];process.stdout.write(JSON.stringify(o))' '${JSON.stringify(Object.keys(vars))}'`;
          const out = execFileSync('sh', ['-c', script], { encoding: 'utf8' });
          expect(JSON.parse(out)).toEqual(vars);
        },
      ),
      { numRuns: 15 },
    );
  });
});
