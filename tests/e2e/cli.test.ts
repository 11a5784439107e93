import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliSandbox, holdNode } from '../helpers/cli.js';
import { filesUnder, TEST_PASSWORD } from '../helpers/index.js';

function snapshot(dir: string): string {
  return filesUnder(dir)
    .sort()
    .map((f) => `${f}:${crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex')}`)
    .join('\n');
}

describe('keynode CLI (built binary)', () => {
  it('init prints the node id and a 24-word phrase; status reports the node', () => {
    const cli = cliSandbox();
    const created = cli.init();
    expect(created.nodeId).toMatch(/^12D3KooW/);
    expect(created.recoveryPhrase.split(' ')).toHaveLength(24);
    const status = cli.ok(['status', '--json']).json();
    expect(status).toMatchObject({ nodeId: created.nodeId, vaultCount: 0, nodePath: cli.nodePath });
    const human = cli.ok(['status']).out;
    expect(human).toContain(created.nodeId);
    expect(cli.run(['init', '--kdf-memory', '8192', '--kdf-iterations', '1']).code).toBe(3);
  });

  it('stores and returns values byte for byte: stdin, 10 MB binary, --file, --generate', () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'prod']);
    cli.ok(['secrets', 'set', 'prod:db/password'], { input: 'hunter2\n' });
    expect(cli.ok(['secrets', 'get', 'prod:db/password']).out).toBe('hunter2\n');
    const big = crypto.randomBytes(10 * 1024 * 1024);
    cli.ok(['secrets', 'set', 'prod:certs/blob.bin'], { input: big });
    expect(cli.ok(['secrets', 'get', 'prod:certs/blob.bin']).stdout.equals(big)).toBe(true);
    const file = path.join(cli.root, 'key.pem');
    fs.writeFileSync(file, Buffer.from([0, 1, 2, 255, 10, 13]));
    cli.ok(['secrets', 'set', 'prod:certs/key', '--file', file]);
    expect(cli.ok(['secrets', 'get', 'prod:certs/key']).stdout.equals(fs.readFileSync(file))).toBe(true);
    expect(cli.ok(['secrets', 'get', 'prod:certs/key', '--json']).json()).toMatchObject({ encoding: 'base64', value: Buffer.from([0, 1, 2, 255, 10, 13]).toString('base64') });
    cli.ok(['secrets', 'set', 'prod:gen/hex', '--generate', '--length', '40', '--charset', 'hex']);
    expect(cli.ok(['secrets', 'get', 'prod:gen/hex']).out).toMatch(/^[0-9a-f]{40}$/);
    cli.ok(['secrets', 'set', 'prod:gen/words', '--generate', '--words', '5']);
    expect(cli.ok(['secrets', 'get', 'prod:gen/words']).out).toMatch(/^[a-z]+(-[a-z]+){4}$/);
    expect(cli.run(['secrets', 'set', 'prod:x', '--length', '4']).code).toBe(2);
  });

  it('edits in $EDITOR through memory-backed storage and leaves no copy behind', () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'v']);
    const editor = path.join(cli.root, 'editor.sh');
    fs.writeFileSync(editor, '#!/bin/sh\nprintf "edited:" >> "$1"\n', { mode: 0o755 });
    cli.ok(['secrets', 'set', 'v:note'], { input: 'first' });
    cli.ok(['secrets', 'set', 'v:note', '--edit'], { env: { EDITOR: editor } });
    expect(cli.ok(['secrets', 'get', 'v:note']).out).toBe('firstedited:');
    expect(fs.readdirSync(cli.env.XDG_RUNTIME_DIR!).filter((name) => name.startsWith('keynode-'))).toEqual([]); // the editor's tmpfs copy is gone
  });

  it('lists, moves, copies, removes and makes directories; shows history, diffs and reverts', () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'app']);
    cli.ok(['secrets', 'set', 'app:db/user'], { input: 'admin' });
    cli.ok(['secrets', 'set', 'app:db/pass'], { input: 'p1' });
    cli.ok(['secrets', 'set', 'app:db/pass', '-m', 'rotate db password'], { input: 'p2' });
    expect(cli.ok(['secrets', 'ls', 'app']).out).toBe('db/\ndb/pass\ndb/user\n');
    expect(cli.ok(['secrets', 'ls', 'app', '--tree']).out).toBe('app\n└── db/\n    ├── pass\n    └── user\n');
    cli.ok(['secrets', 'cp', 'app:db', 'app:db-copy']);
    cli.ok(['secrets', 'mv', 'app:db-copy/user', 'app:moved']);
    cli.ok(['secrets', 'mkdir', 'app:empty']);
    cli.ok(['secrets', 'rm', 'app:db-copy', '-r']);
    expect(cli.run(['secrets', 'rm', 'app:db']).code).toBe(5);
    expect(cli.ok(['secrets', 'ls', 'app', '--json']).json().entries).toEqual([
      { path: 'db', type: 'dir' },
      { path: 'db/pass', type: 'secret' },
      { path: 'db/user', type: 'secret' },
      { path: 'empty', type: 'dir' },
      { path: 'moved', type: 'secret' },
    ]);
    expect(cli.ok(['secrets', 'stat', 'app:db/pass', '--json']).json()).toMatchObject({ type: 'secret', size: 2, modified: { message: 'rotate db password' } });
    const log = cli.ok(['vaults', 'log', 'app', '--path', 'db/pass', '--json']).json().commits as Array<{ commit: string; message: string }>;
    expect(log.map((c) => c.message)).toEqual(['rotate db password', 'set db/pass']);
    expect(cli.ok(['secrets', 'get', 'app:db/pass', '--version', log[1]!.commit.slice(0, 8)]).out).toBe('p1');
    const diff = cli.ok(['vaults', 'diff', 'app', log[1]!.commit, log[0]!.commit]);
    expect(diff.out).toBe('~ db/pass\n');
    expect(diff.out).not.toContain('p1');
    expect(cli.ok(['vaults', 'diff', 'app', log[1]!.commit, log[0]!.commit, '--show-values']).out).toContain('"p1"');
    cli.ok(['vaults', 'revert', 'app', log[1]!.commit]);
    expect(cli.ok(['secrets', 'get', 'app:db/pass']).out).toBe('p1');
    expect(cli.ok(['secrets', 'ls', 'app']).out).toBe('db/\ndb/pass\ndb/user\n');
    expect(cli.ok(['vaults', 'log', 'app', '--json']).json().commits).toHaveLength(9);
  });

  it('manages vaults: list, tag, rename, delete (confirmation required without a terminal)', () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'a']);
    cli.ok(['vaults', 'create', 'b']);
    cli.ok(['vaults', 'tag', 'a', 'prod']);
    expect(cli.ok(['vaults', 'list', '--tag', 'prod', '--json']).json().vaults.map((v: { name: string }) => v.name)).toEqual(['a']);
    cli.ok(['vaults', 'untag', 'a', 'prod']);
    cli.ok(['vaults', 'rename', 'b', 'c']);
    expect(cli.ok(['vaults', 'list']).out).toBe('a\nc\n');
    const refused = cli.run(['vaults', 'delete', 'c']);
    expect(refused.code).toBe(9);
    expect(refused.stderr).toContain('ERR_CONFIRMATION_REQUIRED');
    cli.ok(['vaults', 'delete', 'c', '--yes']);
    expect(cli.ok(['vaults', 'list']).out).toBe('a\n');
    expect(cli.run(['vaults', 'delete', 'zzz', '--yes']).code).toBe(5);
  });

  it('exports a git bundle that the git binary clones and verifies', () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'team']);
    cli.ok(['secrets', 'set', 'team:svc/token'], { input: 'tok-1' });
    cli.ok(['secrets', 'set', 'team:svc/token'], { input: 'tok-2' });
    const bundle = path.join(cli.root, 'team.bundle');
    expect(cli.run(['vaults', 'export', 'team', '--git-bundle', bundle]).code).toBe(9);
    expect(fs.existsSync(bundle)).toBe(false);
    cli.ok(['vaults', 'export', 'team', '--git-bundle', bundle, '--yes']);
    expect(fs.statSync(bundle).mode & 0o777).toBe(0o600);
    const clone = path.join(cli.root, 'clone');
    const git = (args: string[], cwd?: string) => {
      const result = spawnSync('git', args, { cwd, encoding: 'utf8' });
      expect(result.status, result.stderr).toBe(0);
      return result.stdout;
    };
    git(['clone', '-q', bundle, clone]);
    git(['fsck', '--strict'], clone);
    expect(fs.readFileSync(path.join(clone, 'svc/token'), 'utf8')).toBe('tok-2');
    expect(git(['log', '--format=%s'], clone).trim().split('\n')).toEqual(['set svc/token', 'set svc/token', 'create vault']);
    expect(git(['show', 'HEAD~1:svc/token'], clone)).toBe('tok-1');
  });

  it('fails with one line and a stable exit code; --json errors are objects', () => {
    const cli = cliSandbox();
    expect(cli.run(['status']).code).toBe(3);
    cli.init();
    cli.ok(['vaults', 'create', 'v']);
    cli.ok(['secrets', 'set', 'v:s'], { input: 'x' });
    const before = snapshot(cli.nodePath);
    const wrong = cli.run(['secrets', 'get', 'v:s'], { env: { KEYNODE_PASSWORD: 'wrong' } });
    expect(wrong.code).toBe(4);
    expect(wrong.stderr.trim().split('\n')).toEqual(['keynode: wrong password (ERR_WRONG_PASSWORD)']);
    expect(wrong.stdout.length).toBe(0);
    expect(cli.run(['secrets', 'set', 'v:t'], { input: 'y', env: { KEYNODE_PASSWORD: 'wrong' } }).code).toBe(4);
    expect(snapshot(cli.nodePath)).toBe(before);
    expect(cli.run(['secrets', 'get', 'v:s'], { env: { KEYNODE_PASSWORD: undefined } }).code).toBe(4);
    const cases: Array<[string[], number, string]> = [
      [['secrets', 'get', 'nope:s'], 5, 'ERR_VAULT_NOT_FOUND'],
      [['secrets', 'get', 'v:missing'], 5, 'ERR_SECRET_NOT_FOUND'],
      [['secrets', 'get', 'v:../etc/passwd'], 2, 'ERR_INVALID_PATH'],
      [['secrets', 'get', 'v:/abs'], 2, 'ERR_INVALID_PATH'],
      [['secrets', 'get', 'v:a/.git/x'], 2, 'ERR_INVALID_PATH'],
      [['secrets', 'get', 'v:s', '--version', 'beef'], 5, 'ERR_COMMIT_NOT_FOUND'],
      [['vaults', 'create', 'v'], 5, 'ERR_VAULT_EXISTS'],
      [['vaults', 'create', 'a:b'], 2, 'ERR_INVALID_NAME'],
    ];
    for (const [args, code, errorCode] of cases) {
      const result = cli.run(args);
      expect(result.code, args.join(' ')).toBe(code);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain(errorCode);
      const json = cli.run([...args, '--json']);
      expect(json.code).toBe(code);
      expect(json.json().error.code).toBe(errorCode);
    }
    expect(cli.run(['no-such-command']).code).toBe(2);
    expect(cli.run(['secrets', 'get']).code).toBe(2);
  });

  it('a second process waits for the node, fails with ERR_NODE_LOCKED, and recovers from a killed owner', async () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'v']);
    const holder = holdNode(cli.nodePath);
    await holder.ready;
    const started = Date.now();
    const blocked = cli.run(['vaults', 'list', '--lock-timeout', '400']);
    expect(blocked.code).toBe(6);
    expect(blocked.stderr).toContain('ERR_NODE_LOCKED');
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    holder.child.kill('SIGKILL');
    await new Promise((resolve) => holder.child.once('exit', resolve));
    expect(fs.existsSync(path.join(cli.nodePath, 'LOCK'))).toBe(true); // left behind by the killed owner
    expect(cli.ok(['vaults', 'list', '--lock-timeout', '0']).out).toBe('v\n');
  });

  it('changes the password and recovers from the phrase', () => {
    const cli = cliSandbox();
    const { nodeId, recoveryPhrase } = cli.init();
    cli.ok(['vaults', 'create', 'v']);
    cli.ok(['secrets', 'set', 'v:s'], { input: 'kept' });
    const newPasswordFile = path.join(cli.root, 'new-password');
    fs.writeFileSync(newPasswordFile, 'second password\n');
    cli.ok(['password', '--new-password-file', newPasswordFile]);
    expect(cli.run(['secrets', 'get', 'v:s']).code).toBe(4);
    expect(cli.ok(['secrets', 'get', 'v:s', '--password-file', newPasswordFile]).out).toBe('kept');
    const phraseFile = path.join(cli.root, 'phrase');
    fs.writeFileSync(phraseFile, recoveryPhrase + '\n');
    const recovered = cli.ok(['recover', '--phrase-file', phraseFile, '--json'], { env: { KEYNODE_PASSWORD: 'third password' } }).json();
    expect(recovered).toEqual({ nodeId, nodePath: cli.nodePath, existing: true });
    expect(cli.ok(['secrets', 'get', 'v:s'], { env: { KEYNODE_PASSWORD: 'third password' } }).out).toBe('kept');
    fs.writeFileSync(phraseFile, recoveryPhrase.split(' ').reverse().join(' '));
    expect(cli.run(['recover', '--phrase-file', phraseFile]).code).toBe(4);
  });

  it('never puts the password or a secret value in argv', () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'v']);
    // Every way to pass a password or value is a file, stdin, the environment, or a prompt: the
    // CLI has no flag that takes one. Check the help of every command for such a flag.
    const help = ['init', 'recover', 'password', 'status', 'secrets set', 'secrets get'].map((c) => cli.ok([...c.split(' '), '--help']).out).join('\n');
    expect(help).not.toMatch(/--password[ =]<|--value|--secret[ =]</);
    expect(TEST_PASSWORD.length).toBeGreaterThan(0);
  });
});
