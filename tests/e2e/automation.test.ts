import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, cliSandbox } from '../helpers/cli.js';

const hasGpg = spawnSync('gpg', ['--version']).status === 0;
const hasZsh = spawnSync('zsh', ['--version']).status === 0;

describe('automation (built binary)', () => {
  it('inject renders {{ VAULT:PATH }} to a 0600 file, and writes nothing when a reference is unknown', () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'prod']);
    cli.ok(['secrets', 'set', 'prod:db/password'], { input: 's3cr3t' });
    const template = path.join(cli.root, 'config.tpl');
    fs.writeFileSync(template, 'url: postgres://app:{{ prod:db/password }}@db\nhelm: {{ .Values.keep }}\nagain: {{prod:db/password}}\n');
    const out = path.join(cli.root, 'config.yml');
    cli.ok(['secrets', 'inject', '-i', template, '-o', out]);
    expect(fs.readFileSync(out, 'utf8')).toBe('url: postgres://app:s3cr3t@db\nhelm: {{ .Values.keep }}\nagain: s3cr3t\n');
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    expect(cli.ok(['secrets', 'inject', '-i', template]).out).toContain('app:s3cr3t@db');
    fs.writeFileSync(template, 'a: {{ prod:db/password }}\nb: {{ prod:db/missing }}\n');
    const bad = path.join(cli.root, 'never.yml');
    const failed = cli.run(['secrets', 'inject', '-i', template, '-o', bad]);
    expect(failed.code).toBe(5);
    expect(fs.existsSync(bad)).toBe(false);
    fs.writeFileSync(template, 'x: {{ prod:../../etc/passwd }}\n');
    expect(cli.run(['secrets', 'inject', '-i', template, '-o', bad]).code).toBe(2);
  });

  it('secrets env prints dotenv, json and shell; names collide loudly', () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'v']);
    cli.ok(['secrets', 'set', 'v:db/password'], { input: 'it\'s "quoted"\nand $multi' });
    cli.ok(['secrets', 'set', 'v:db-password'], { input: 'other' });
    cli.ok(['secrets', 'set', 'v:api/key'], { input: 'k' });
    expect(cli.ok(['secrets', 'env', 'v:api', '--format', 'json']).json()).toEqual({ KEY: 'k' });
    const dotenv = cli.ok(['secrets', 'env', 'v:db', '--format', 'dotenv']).out;
    expect(dotenv).toBe('PASSWORD="it\'s \\"quoted\\"\nand \\$multi"\n');
    expect(execFileSync('sh', ['-c', `set -a; ${dotenv}printf '%s' "$PASSWORD"`], { encoding: 'utf8' })).toBe('it\'s "quoted"\nand $multi');
    const shell = cli.ok(['secrets', 'env', 'v:db', '--var', 'K=v:api/key', '--format', 'shell']).out;
    expect(execFileSync('sh', ['-c', `${shell}printf '%s|%s' "$PASSWORD" "$K"`], { encoding: 'utf8' })).toBe('it\'s "quoted"\nand $multi|k');
    const collision = cli.run(['secrets', 'env', 'v', '--format', 'json']);
    expect(collision.code).toBe(2);
    expect(collision.stderr).toContain('ERR_ENV_NAME');
    expect(cli.run(['secrets', 'env', 'v:api', '--var', '9X=v:api/key', '--format', 'json']).code).toBe(2);
  });

  it('secrets env refuses imported names that change how programs run, unless named with --var', () => {
    const cli = cliSandbox();
    cli.init();
    const planted =
      'LD_PRELOAD=/tmp/evil.so\nBASH_ENV=/tmp/evil.sh\nNODE_OPTIONS=--require=/tmp/evil.js\nPATH=/tmp/evil\nGIT_SSH_COMMAND=evil\nAPP_TOKEN=fine\n';
    cli.ok(['import', 'dotenv', '-', '--vault', 'imp'], { input: planted });
    for (const args of [
      ['imp', '--format', 'json'],
      ['imp', '--format', 'dotenv'],
      ['imp:LD_PRELOAD', '--', 'true'],
      ['imp:PATH', '--format', 'shell'],
    ]) {
      const refused = cli.run(['secrets', 'env', ...args]);
      expect(refused.code, args.join(' ')).toBe(2);
      expect(refused.stderr).toContain('ERR_ENV_NAME');
      expect(refused.stderr).toContain('changes how programs run');
      expect(refused.stderr).not.toContain('/tmp/evil');
    }
    expect(cli.ok(['secrets', 'env', 'imp:APP_TOKEN', '--format', 'json']).json()).toEqual({ APP_TOKEN: 'fine' });
    // Named on purpose: allowed.
    expect(cli.ok(['secrets', 'env', '--var', 'LD_PRELOAD=imp:LD_PRELOAD', '--format', 'json']).json()).toEqual({ LD_PRELOAD: '/tmp/evil.so' });
  });

  it('secrets env: an environment too large for exec is a clear error, not an internal one', () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'big']);
    // One variable over Linux's 128 KiB per-string limit, then 3 MB in all (over the usual 2 MB).
    cli.ok(['secrets', 'set', 'big:one/huge'], { input: 'x'.repeat(200_000) });
    const one = cli.run(['secrets', 'env', 'big:one', '--', 'true']);
    expect(one.code).toBe(2);
    expect(one.stderr).toContain('ERR_INVALID_ARGUMENT');
    expect(one.stderr).toMatch(/the environment is too large for exec \(\d+ bytes/);
    const entries = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`many/v${i}`, 'y'.repeat(100_000)]));
    cli.ok(['import', 'json', '-', '--vault', 'big'], { input: JSON.stringify(entries) });
    const many = cli.run(['secrets', 'env', 'big:many', '--', 'true']);
    expect(many.code).toBe(2);
    expect(many.stderr).toMatch(/the environment is too large for exec \(\d+ bytes/);
  });

  it('a malformed JSON or dotenv import names the line, never the content', () => {
    const cli = cliSandbox();
    cli.init();
    const json = cli.run(['import', 'json', '-', '--vault', 'x'], { input: '{\n  "db": hunter2-secret\n}' });
    expect(json.code).toBe(2);
    expect(json.stderr).toContain('not valid JSON: line 2, column 9');
    expect(json.stderr).not.toMatch(/hunter2|secret"/);
    const dotenv = cli.run(['import', 'dotenv', '-', '--vault', 'x'], { input: 'A="hunter2\n9hunter2=1\n' });
    expect(dotenv.code).toBe(2);
    expect(dotenv.stderr).toContain('.env line 1: unterminated quoted value');
    expect(dotenv.stderr).not.toContain('hunter2');
  });

  it('an import that names a secret twice, or a name as secret and directory, is refused before anything is created', () => {
    const cli = cliSandbox();
    cli.init();
    for (const [format, input] of [
      ['dotenv', 'A=1\nA=2\n'],
      ['json', '{"db/password":"x","db":{"password":"y"}}'],
      ['json', '{"a":"x","a/b":"y"}'],
    ] as const) {
      const result = cli.run(['import', format, '-', '--vault', 'dup'], { input });
      expect(result.code, input).toBe(2);
      expect(result.stderr).toMatch(/twice|both as a secret and as a directory/);
      expect(result.stderr).not.toMatch(/"[xy12]"/);
      expect(cli.ok(['vaults', 'list', '--json']).json().vaults).toEqual([]);
    }
  });

  it('exports a vault as dotenv and JSON and imports them back', () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'src']);
    cli.ok(['secrets', 'set', 'src:db/password'], { input: 'p w\n"x"' });
    cli.ok(['secrets', 'set', 'src:bin'], { input: Buffer.from([0xff, 0x00, 0x01]) });
    const json = cli.ok(['vaults', 'export', 'src', '--format', 'json']).json();
    expect(json).toEqual({ bin: { base64: Buffer.from([0xff, 0x00, 0x01]).toString('base64') }, 'db/password': 'p w\n"x"' });
    const jsonFile = path.join(cli.root, 'src.json');
    expect(cli.run(['vaults', 'export', 'src', '--format', 'json', '-o', jsonFile]).code).toBe(9); // plaintext file needs --yes
    cli.ok(['vaults', 'export', 'src', '--format', 'json', '-o', jsonFile, '--yes']);
    expect(fs.statSync(jsonFile).mode & 0o777).toBe(0o600);
    cli.ok(['import', 'json', jsonFile, '--vault', 'copy']);
    expect(cli.ok(['secrets', 'get', 'copy:bin']).stdout.equals(Buffer.from([0xff, 0x00, 0x01]))).toBe(true);
    expect(cli.ok(['secrets', 'get', 'copy:db/password']).out).toBe('p w\n"x"');
    // dotenv cannot hold binary values: export says so instead of corrupting them.
    expect(cli.run(['vaults', 'export', 'src', '--format', 'dotenv']).code).toBe(2);
    cli.ok(['secrets', 'rm', 'src:bin']);
    const dotenv = cli.ok(['vaults', 'export', 'src', '--format', 'dotenv']).out;
    expect(dotenv).toBe('DB_PASSWORD="p w\n\\"x\\""\n');
    const imported = cli
      .ok(['import', 'dotenv', '-', '--vault', 'env', '--prefix', 'app', '--json'], { input: dotenv + 'export PLAIN=yes # comment\n' })
      .json();
    expect(imported).toMatchObject({ vault: 'env', imported: 2, created: true });
    expect(cli.ok(['secrets', 'get', 'env:app/DB_PASSWORD']).out).toBe('p w\n"x"');
    expect(cli.ok(['secrets', 'get', 'env:app/PLAIN']).out).toBe('yes');
    expect(cli.run(['import', 'dotenv', '-', '--vault', 'env'], { input: 'no equals sign\n' }).code).toBe(2);
    expect(cli.run(['import', 'yaml', 'x', '--vault', 'env']).code).toBe(2);
  });

  it.skipIf(!hasGpg)('migrates a pass password-store through gpg, keeping paths and reporting what it skipped', () => {
    const cli = cliSandbox();
    cli.init();
    const gnupg = path.join(cli.root, 'gnupg');
    fs.mkdirSync(gnupg, { mode: 0o700 });
    const env = { ...process.env, GNUPGHOME: gnupg };
    execFileSync(
      'gpg',
      ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--quick-gen-key', 'keynode test <test@keynode.invalid>', 'default', 'default', 'never'],
      { env, stdio: 'ignore' },
    );
    // The layout `pass init` and `pass insert` make: .gpg-id, and one encrypted file per entry.
    const store = path.join(cli.root, 'password-store');
    const entries: Record<string, string> = { 'email/work': 'hunter2\nuser: me', 'web/github.com': 'gh-pass', 'top-level': 'x' };
    fs.mkdirSync(store);
    fs.writeFileSync(path.join(store, '.gpg-id'), 'test@keynode.invalid\n');
    for (const [name, value] of Object.entries(entries)) {
      fs.mkdirSync(path.dirname(path.join(store, name)), { recursive: true });
      execFileSync('gpg', ['--batch', '--yes', '--trust-model', 'always', '-e', '-r', 'test@keynode.invalid', '-o', path.join(store, `${name}.gpg`)], {
        env,
        input: value,
      });
    }
    fs.writeFileSync(path.join(store, 'README.txt'), 'not a secret');
    fs.mkdirSync(path.join(store, '.git'));
    fs.writeFileSync(path.join(store, 'broken.gpg'), 'not really encrypted');
    const result = cli.ok(['import', 'pass', '--store', store, '--vault', 'migrated', '--json'], { env: { GNUPGHOME: gnupg } }).json();
    expect(result.imported).toBe(3);
    expect(result.skipped.map((s: { path: string }) => s.path)).toEqual(['.git', 'README.txt', 'broken.gpg']);
    for (const [name, value] of Object.entries(entries)) expect(cli.ok(['secrets', 'get', `migrated:${name}`]).out).toBe(value);
    // A file named like a gpg option, imported with --store . (relative): a file, not an option.
    execFileSync('gpg', ['--batch', '--yes', '--trust-model', 'always', '-e', '-r', 'test@keynode.invalid', '-o', path.join(store, '--output=evil.gpg')], {
      env,
      input: 'not an option',
    });
    const relative = spawnSync(process.execPath, [CLI, 'import', 'pass', '--store', '.', '--vault', 'again', '--json'], {
      cwd: store,
      env: { ...cli.env, GNUPGHOME: gnupg },
      input: '',
      timeout: 60_000,
    });
    expect(relative.status, relative.stderr.toString()).toBe(0);
    expect(JSON.parse(relative.stdout.toString()).imported).toBe(4);
    expect(cli.ok(['secrets', 'get', 'again:--output=evil']).out).toBe('not an option');
    expect(fs.existsSync(path.join(store, 'evil.gpg'))).toBe(false);
  });

  it('completion scripts complete commands and options in a real bash', () => {
    const cli = cliSandbox();
    const script = cli.ok(['completion', 'bash']).out;
    const complete = (words: string[]) =>
      execFileSync(
        'bash',
        ['-c', `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _keynode; echo "\${COMPREPLY[@]}"`],
        { encoding: 'utf8' },
      )
        .trim()
        .split(' ');
    expect(complete(['keynode', 'se'])).toEqual(['secrets']);
    expect(complete(['keynode', 'secrets', 'i'])).toEqual(['inject']);
    expect(complete(['keynode', 'vaults', 'export', 'prod', '--f'])).toEqual(['--format']);
    expect(complete(['keynode', 'agent', ''])).toEqual(expect.arrayContaining(['start', 'stop', 'status', 'lock', 'unlock']));
    expect(cli.ok(['completion', 'zsh']).out).toContain('compdef _keynode keynode');
    expect(cli.ok(['completion', 'fish']).out).toContain("complete -c keynode -n '__fish_use_subcommand' -a secrets");
    expect(cli.run(['completion', 'tcsh']).code).toBe(2);
  });

  it.skipIf(!hasZsh)('the zsh script parses and loads in a real zsh', () => {
    const cli = cliSandbox();
    const file = path.join(cli.root, 'keynode.zsh');
    fs.writeFileSync(file, cli.ok(['completion', 'zsh']).out);
    execFileSync('zsh', ['-n', file]);
    expect(execFileSync('zsh', ['-c', `autoload -U compinit; compinit -u; source ${file}; whence -w _keynode`], { encoding: 'utf8' })).toContain('function');
  });

  it('--copy puts the value on the clipboard and clears it later; without a clipboard tool it says so', async () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'v']);
    cli.ok(['secrets', 'set', 'v:pw'], { input: 'clip-me' });
    const none = cli.run(['secrets', 'get', 'v:pw', '--copy'], { env: { DISPLAY: undefined, WAYLAND_DISPLAY: undefined, PATH: '/nonexistent' } });
    expect(none.code).toBe(10);
    expect(none.stderr).toContain('no clipboard tool');
    // A stand-in xclip (same arguments) backed by a file, so the test needs no X server.
    const bin = path.join(cli.root, 'bin');
    const board = path.join(cli.root, 'clipboard');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'xclip'), `#!/bin/sh\ncase " $* " in *" -o "*) cat "${board}" 2>/dev/null ;; *) cat > "${board}" ;; esac\n`, {
      mode: 0o755,
    });
    const env = { DISPLAY: ':99', PATH: `${bin}:${process.env.PATH ?? ''}`, KEYNODE_CLIPBOARD_SECONDS: '1' };
    const copied = cli.ok(['secrets', 'get', 'v:pw', '--copy'], { env });
    expect(copied.out).not.toContain('clip-me');
    expect(fs.readFileSync(board, 'utf8')).toBe('clip-me');
    // Wait for the clearing (an event; the deadline only ends a broken run).
    const deadline = Date.now() + 60_000;
    while (fs.readFileSync(board, 'utf8') !== '' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fs.readFileSync(board, 'utf8')).toBe('');
  });
});
