import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { normalizeSecretPath, parseSecretRef, validateVaultName } from '../../src/vaults/paths.js';
import { isKeynodeError } from '../../src/errors.js';
import { createTestNode, tempDir } from '../helpers/index.js';

const hasGit = spawnSync('git', ['--version']).status === 0;

function git(args: string[], options: { cwd?: string; input?: string | Buffer } = {}) {
  return spawnSync('git', args, {
    cwd: options.cwd,
    input: options.input,
    encoding: 'utf8',
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: options.cwd ?? '/nonexistent' },
  });
}

/**
 * Contents `git fsck` rejects if it takes the entry for .gitmodules (an option as url) or for
 * .gitattributes (a line over 2048 bytes): an entry name git reads as either must not pass.
 */
const HOSTILE_BLOB = `[submodule "x"]\n\tpath = x\n\turl = --upload-pack=touch pwned\n# ${'a'.repeat(3000)}\n`;

/** Whether `git fsck --strict` accepts one tree whose entries are `names` (all the hostile blob). */
function gitFsckAcceptsNames(names: string[]): { ok: boolean; output: string } {
  const repo = tempDir('keynode-fsck-');
  expect(git(['init', '-q', repo]).status).toBe(0);
  const blob = git(['hash-object', '-w', '--stdin'], { cwd: repo, input: HOSTILE_BLOB }).stdout.trim();
  const listing = names.map((name) => `100644 blob ${blob}\t${name}\0`).join('');
  const tree = git(['mktree', '-z'], { cwd: repo, input: Buffer.from(listing) });
  expect(tree.status, tree.stderr).toBe(0);
  const commit = git(['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit-tree', '-m', 'names', tree.stdout.trim()], { cwd: repo });
  expect(git(['update-ref', 'refs/heads/main', commit.stdout.trim()], { cwd: repo }).status).toBe(0);
  const fsck = git(['fsck', '--strict', '--no-dangling'], { cwd: repo });
  return { ok: fsck.status === 0, output: fsck.stdout + fsck.stderr };
}

/** Names built from the pieces git's reserved-name rules look at. */
const nastySegment = fc
  .array(
    fc.constantFrom(
      '.',
      '..',
      ' ',
      ':',
      '~',
      '\\',
      '1',
      '2',
      '4',
      '5',
      '9',
      '0',
      'git',
      'GIT',
      'Git',
      'g',
      'i',
      't',
      'gitmodules',
      'GITMODULES',
      'gitattributes',
      'gi7eba',
      'gi7d29',
      'GI7EBA',
      'gitmod',
      'gitatt',
      '$INDEX_ALLOCATION',
      '$DATA',
      '\u200c',
      '\u200d',
      '\u200e',
      '\u202a',
      '\u202e',
      '\u206a',
      '\u206f',
      '\ufeff',
      '\u00a0',
      '\u212a',
      '\u0130',
      'é',
      'a',
      'x'.repeat(120),
      '\ud800',
    ),
    { minLength: 1, maxLength: 8 },
  )
  .map((pieces) => pieces.join(''));

function accepted(segment: string): boolean {
  try {
    normalizeSecretPath(segment);
    return true;
  } catch (error) {
    if (!isKeynodeError(error, 'ERR_INVALID_PATH')) throw error;
    return false;
  }
}

// Without '~', ':' or '\\', only names starting with ".git" can be reserved git names.
const segment = fc.stringMatching(/^[A-Za-z0-9_\-.@+= ]{1,20}$/).filter((s) => s !== '.' && s !== '..' && !s.toLowerCase().startsWith('.git'));

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    return isKeynodeError(error) ? error.code : 'not a KeynodeError';
  }
}

describe('secret paths', () => {
  it.each([
    ['', 'empty'],
    ['/abs', 'absolute'],
    ['a//b', 'empty segment'],
    ['a/../b', 'dot-dot'],
    ['..', 'dot-dot'],
    ['./a', 'dot'],
    ['.git/config', '.git'],
    ['a/.GIT', '.git any case'],
    ['a\0b', 'NUL'],
    ['a\nb', 'control character'],
    ['x'.repeat(5000), 'too long'],
    ['a/' + 'x'.repeat(256), 'segment over 255 bytes'],
    ['a/' + 'é'.repeat(128), 'segment over 255 bytes (UTF-8)'],
    ['.git ', '.git, trailing space (NTFS)'],
    ['.git.', '.git, trailing period (NTFS)'],
    ['.git. . .', '.git, trailing spaces and periods'],
    ['GIT~1', 'NTFS short name'],
    ['git~1', 'NTFS short name'],
    ['.git::$INDEX_ALLOCATION', 'NTFS stream'],
    ['.git:$DATA', 'NTFS stream'],
    ['.g\u200cit', 'HFS+ ignorable ZWNJ'],
    ['\u200d.git', 'HFS+ ignorable ZWJ first'],
    ['.git\ufeff', 'HFS+ ignorable BOM last'],
    ['.G\u202eI\u206fT', 'HFS+ ignorables, upper case'],
    ['a\\.git', 'backslash'],
    ['a\\b', 'backslash'],
    ['.gitmodules', '.gitmodules'],
    ['.GitModules ', '.gitmodules, NTFS'],
    ['gitmod~1', '.gitmodules, 8.3 name'],
    ['GI7EBA~4', '.gitmodules, hashed 8.3 name'],
    ['~1234567', '.gitmodules, hashed 8.3 name without prefix'],
    ['.gitmo\u200ddules', '.gitmodules, HFS+'],
    ['.gitattributes', '.gitattributes'],
    ['gitatt~2', '.gitattributes, 8.3 name'],
    ['gi7d29~1', '.gitattributes, hashed 8.3 name'],
    ['a\ud800', 'lone surrogate'],
  ])('rejects %j (%s) with ERR_INVALID_PATH', (path) => {
    expect(code(() => normalizeSecretPath(path))).toBe('ERR_INVALID_PATH');
  });

  it.each([
    '.gitx',
    '.git~',
    'git~2',
    'git~1x',
    '.gitmodule',
    'gitmod~5',
    'gi7eba~0',
    '.gitignore',
    '.mailmap',
    'a:b',
    '.g\u00a0it',
    'x'.repeat(255),
    'é'.repeat(127),
  ])('accepts %j (no file system maps it to a git name)', (path) => {
    expect(normalizeSecretPath(path)).toBe(path);
  });

  it.skipIf(!hasGit)('accepts only names git fsck --strict accepts (property, git as the oracle)', () => {
    const names = new Set<string>();
    let refused = 0;
    fc.assert(
      fc.property(nastySegment, (segment) => {
        if (accepted(segment)) names.add(segment);
        else refused++;
      }),
      { numRuns: 3000 },
    );
    expect(names.size).toBeGreaterThan(100);
    const verdict = gitFsckAcceptsNames([...names]);
    expect(verdict.ok, verdict.output).toBe(true);
    // The oracle is not blind: the same check fails on the spellings the validator refuses.
    for (const reserved of ['.git ', 'GIT~1', '.g\u200cit', '.gitmodules', '~1234567', '.GitAttributes.']) {
      expect(accepted(reserved)).toBe(false);
      expect(gitFsckAcceptsNames([reserved]).ok, reserved).toBe(false);
    }
    console.log(`nasty segments: ${names.size} distinct accepted (all pass git fsck --strict), ${refused} refused`);
  });

  it.skipIf(!hasGit)('a vault holding nasty accepted names exports a bundle that passes git fsck --strict and checks out', async () => {
    const { node } = await createTestNode();
    const vault = await node.vaults.createVault('v');
    const names = fc.sample(nastySegment.filter(accepted), { numRuns: 24, seed: 42 });
    const fixed = ['.gitx', 'git~2', '.gitmodule', 'a:b', '.git\u00a0', 'x'.repeat(255)];
    const paths = [...new Set([...names, ...fixed])].map((name, i) => `d${i}/${name}`);
    for (const secretPath of paths) await vault.writeSecret(secretPath, Buffer.from(HOSTILE_BLOB));
    const root = tempDir();
    const bundle = path.join(root, 'v.bundle');
    await vault.exportBundle(bundle);
    node.close();
    const clone = path.join(root, 'clone');
    const cloned = git(['clone', '-q', bundle, clone], { cwd: root });
    expect(cloned.status, cloned.stderr).toBe(0);
    const fsck = git(['fsck', '--strict'], { cwd: clone });
    expect(fsck.status, fsck.stdout + fsck.stderr).toBe(0);
    for (const secretPath of paths) expect(fs.readFileSync(path.join(clone, secretPath), 'utf8')).toBe(HOSTILE_BLOB);
  });

  it('accepts valid paths and normalisation is idempotent (property)', () => {
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 6 }), fc.boolean(), (segments, slash) => {
        const path = segments.join('/') + (slash ? '/' : '');
        const normalized = normalizeSecretPath(path);
        expect(normalized).toBe(segments.join('/'));
        expect(normalizeSecretPath(normalized)).toBe(normalized);
      }),
    );
  });

  it('parses VAULT:PATH references', () => {
    expect(parseSecretRef('prod:db/password')).toEqual({ vault: 'prod', path: 'db/password' });
    expect(parseSecretRef('prod:a:b')).toEqual({ vault: 'prod', path: 'a:b' });
    expect(parseSecretRef('prod', { allowRoot: true })).toEqual({ vault: 'prod', path: '' });
    expect(code(() => parseSecretRef('prod'))).toBe('ERR_INVALID_PATH');
    expect(code(() => parseSecretRef(':x'))).toBe('ERR_INVALID_NAME');
  });

  it('validates vault names', () => {
    expect(validateVaultName('my vault-1')).toBe('my vault-1');
    for (const bad of ['', 'a/b', 'a:b', ' pad', 'x\u0001', '..', 'v'.repeat(300)]) expect(code(() => validateVaultName(bad))).toBe('ERR_INVALID_NAME');
  });
});
