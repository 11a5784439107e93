import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliSandbox, holdNode } from '../helpers/cli.js';
import { filesUnder, lockPresent, TEST_PASSWORD } from '../helpers/index.js';

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
    expect(cli.ok(['secrets', 'get', 'prod:certs/key', '--json']).json()).toMatchObject({
      encoding: 'base64',
      value: Buffer.from([0, 1, 2, 255, 10, 13]).toString('base64'),
    });
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
    expect(
      cli
        .ok(['vaults', 'list', '--tag', 'prod', '--json'])
        .json()
        .vaults.map((v: { name: string }) => v.name),
    ).toEqual(['a']);
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
    expect(lockPresent(cli.nodePath)).toBe(true); // left behind by the killed owner
    expect(cli.ok(['vaults', 'list', '--lock-timeout', '0']).out).toBe('v\n');
  });

  it('changes the password and recovers from the phrase', () => {
    const cli = cliSandbox();
    const { nodeId, recoveryPhrase } = cli.init();
    cli.ok(['vaults', 'create', 'v']);
    cli.ok(['secrets', 'set', 'v:s'], { input: 'kept' });
    const newPasswordFile = path.join(cli.root, 'new-password');
    fs.writeFileSync(newPasswordFile, 'second password\n', { mode: 0o600 });
    cli.ok(['password', '--new-password-file', newPasswordFile]);
    expect(cli.run(['secrets', 'get', 'v:s']).code).toBe(4);
    expect(cli.ok(['secrets', 'get', 'v:s', '--password-file', newPasswordFile]).out).toBe('kept');
    const phraseFile = path.join(cli.root, 'phrase');
    fs.writeFileSync(phraseFile, recoveryPhrase + '\n', { mode: 0o600 });
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

  it('password files: exact bytes less one newline; refused when others may read them', () => {
    const cli = cliSandbox();
    cli.init();
    const file = (name: string, bytes: string | Buffer, mode = 0o600) => {
      const at = path.join(cli.root, name);
      fs.writeFileSync(at, bytes, { mode });
      fs.chmodSync(at, mode);
      return at;
    };
    const withFile = (at: string) => cli.run(['status', '--json', '--password-file', at], { env: { KEYNODE_PASSWORD: undefined } });
    expect(withFile(file('lf', `${TEST_PASSWORD}\n`)).code).toBe(0);
    expect(withFile(file('crlf', `${TEST_PASSWORD}\r\n`)).code).toBe(0);
    expect(withFile(file('two-lf', `${TEST_PASSWORD}\n\n`)).code).toBe(4); // only one newline is the editor's
    const open = file('open', TEST_PASSWORD, 0o644);
    const refused = withFile(open);
    expect(refused.code).toBe(2);
    expect(refused.json().error.code).toBe('ERR_INVALID_ARGUMENT');
    expect(refused.json().error.message).toContain(`chmod 600 ${open}`);
    expect(withFile(file('group', TEST_PASSWORD, 0o620)).code).toBe(2);
  });

  it('password files are bytes end to end: binary files never unlock one node, with or without an agent', () => {
    const cli = cliSandbox();
    const noEnv = { KEYNODE_PASSWORD: undefined };
    const file = (name: string, bytes: Buffer) => {
      const at = path.join(cli.root, name);
      fs.writeFileSync(at, bytes, { mode: 0o600 });
      return at;
    };
    // Not UTF-8 (0xff, a lone 0xc3, 0x80), with a NUL and an inner newline: all of it is the password.
    const binary = file('binary', Buffer.from([0x70, 0xff, 0x00, 0x0a, 0xc3, 0x28, 0x80, 0x77]));
    // Differs only in invalid-UTF-8 bytes: decoding with replacement made both "p\uFFFD\0\n\uFFFD(\uFFFDw".
    const lookalike = file('lookalike', Buffer.from([0x70, 0xfe, 0x00, 0x0a, 0xc3, 0x28, 0xbf, 0x77]));
    const replaced = file('replaced', Buffer.from('p\uFFFD\0\n\uFFFD(\uFFFDw'));
    const withFile = (at: string, args: string[], input?: string) => cli.run([...args, '--password-file', at], { env: noEnv, input });
    const refusedWith = (at: string, args: string[]) => {
      const result = withFile(at, [...args, '--json']);
      expect(result.code, result.stderr).toBe(4);
      expect(result.json().error.code).toBe('ERR_WRONG_PASSWORD');
    };

    expect(withFile(binary, ['init', '--kdf-memory', '8192', '--kdf-iterations', '1']).code).toBe(0);
    expect(withFile(binary, ['vaults', 'create', 'app']).code).toBe(0);
    expect(withFile(binary, ['secrets', 'set', 'app:key'], 'local').code).toBe(0);
    expect(withFile(binary, ['secrets', 'get', 'app:key']).out).toBe('local');
    refusedWith(lookalike, ['secrets', 'get', 'app:key']);
    refusedWith(replaced, ['secrets', 'get', 'app:key']);

    const started = withFile(binary, ['agent', 'start', '--background', '--json']);
    expect(started.code, started.stderr).toBe(0);
    const { pid } = started.json() as { pid: number };
    try {
      expect(cli.run(['secrets', 'get', 'app:key'], { env: noEnv }).out).toBe('local'); // the starter's session
      expect(cli.run(['agent', 'lock'], { env: noEnv }).code).toBe(0);
      refusedWith(lookalike, ['secrets', 'get', 'app:key']);
      expect(withFile(binary, ['secrets', 'set', 'app:key'], 'agent').code).toBe(0); // unlocks it again
      expect(cli.run(['agent', 'status', '--json'], { env: noEnv }).json().locked).toBe(false);
      expect(withFile(binary, ['secrets', 'get', 'app:key']).out).toBe('agent');
      refusedWith(lookalike, ['agent', 'unlock']);
      expect(withFile(binary, ['agent', 'unlock']).code).toBe(0);
      expect(cli.run(['agent', 'stop'], { env: noEnv }).code).toBe(0);
    } finally {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* stopped */
      }
    }
    expect(withFile(binary, ['secrets', 'get', 'app:key']).out).toBe('agent'); // without the agent again
  });

  it('warns once on stderr when the node directory is open to other users', () => {
    const cli = cliSandbox();
    fs.mkdirSync(cli.nodePath, { mode: 0o755 });
    fs.chmodSync(cli.nodePath, 0o755);
    const made = cli.run(['init', '--kdf-memory', '8192', '--kdf-iterations', '1', '--json']);
    expect(made.code).toBe(0);
    expect(made.stderr).not.toContain('warning: node directory'); // init makes it 0700 itself
    expect(fs.statSync(cli.nodePath).mode & 0o777).toBe(0o700);
    expect(cli.ok(['status']).stderr).toBe('');
    fs.chmodSync(cli.nodePath, 0o755);
    for (const args of [['status'], ['status', '--json']]) {
      const stderr = cli.ok(args).stderr;
      expect(stderr.match(/warning: node directory .* is accessible by other users \(mode 0755\); run: chmod 700 /g)?.length).toBe(1);
    }
  });

  it('password never takes the new password from KEYNODE_PASSWORD, and refuses the same password', () => {
    const cli = cliSandbox();
    cli.init();
    const noSource = cli.run(['password', '--json']);
    expect(noSource.code).toBe(4);
    expect(noSource.json().error.code).toBe('ERR_PASSWORD_REQUIRED');
    expect(noSource.out).not.toContain('changed');
    const same = cli.run(['password', '--json'], { env: { KEYNODE_NEW_PASSWORD: TEST_PASSWORD } });
    expect(same.code).toBe(2);
    expect(same.json().error.code).toBe('ERR_INVALID_ARGUMENT');
    expect(cli.ok(['status', '--json']).json().vaultCount).toBe(0); // still the old password
    const rewrapped = cli.ok(['password', '--json', '--kdf-memory', '16384', '--kdf-iterations', '1'], { env: { KEYNODE_NEW_PASSWORD: TEST_PASSWORD } }).json();
    expect(rewrapped).toEqual({ nodePath: cli.nodePath, changed: false, kdfChanged: true });
    expect(JSON.parse(fs.readFileSync(path.join(cli.nodePath, 'keynode.key'), 'utf8')).kdf.memoryKib).toBe(16384);
  });

  it('refuses a crafted key file with out-of-bounds KDF parameters (ERR_INTEGRITY, before argon2)', () => {
    const cli = cliSandbox();
    cli.init();
    const keyFile = path.join(cli.nodePath, 'keynode.key');
    const { checksum: _checksum, ...contents } = JSON.parse(fs.readFileSync(keyFile, 'utf8')) as Record<string, unknown> & { kdf: Record<string, unknown> };
    const crafted = { ...contents, kdf: { ...contents.kdf, memoryKib: 4 * 1024 * 1024, iterations: 100 } };
    const checksum = crypto.createHash('sha256').update(JSON.stringify(crafted)).digest('base64');
    fs.writeFileSync(keyFile, JSON.stringify({ ...crafted, checksum }));
    const result = cli.run(['status', '--json']);
    expect(result.code).toBe(7);
    expect(result.json().error.code).toBe('ERR_INTEGRITY');
    expect(result.json().error.message).toContain('has invalid KDF parameters');
    expect(cli.run(['init', '--kdf-memory', String(2 * 1024 * 1024)], { env: { KEYNODE_PATH: path.join(cli.root, 'n2') } }).code).toBe(2);
  });
});
