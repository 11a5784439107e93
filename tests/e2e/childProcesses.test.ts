import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, cliSandbox } from '../helpers/cli.js';

/** Wait for `check` to hold (an event, not a duration: the deadline only stops a broken run). */
async function waitFor<T>(check: () => T | undefined | false, what: string, deadlineMs = 60_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const readIfExists = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined);

/** Lines `KEY=...` of an environment dump whose name starts with KEYNODE_ and carries a credential. */
const credentialLines = (envDump: string) => envDump.split(/[\n\0]/).filter((line) => /^KEYNODE_\w*(PASSWORD|PHRASE)/.test(line));

/** A stand-in editor: records the file it was given, that file's surroundings and its own environment. */
function recordingEditor(root: string, body: string): { editor: string; record: string } {
  const record = path.join(root, 'editor-record');
  const editor = path.join(root, 'editor.sh');
  fs.writeFileSync(
    editor,
    [
      '#!/bin/sh',
      `{ printf '%s\\n' "$1"; stat -f -c %T "$1"; stat -c %a "$1"; stat -c %a "$(dirname "$1")"; } > "${record}.tmp"`,
      `env > "${record}.env"`,
      `mv "${record}.tmp" "${record}"`,
      body,
    ].join('\n'),
    { mode: 0o755 },
  );
  return { editor, record };
}

describe('programs keynode starts (built binary)', () => {
  it('--edit: a 0600 file in a 0700 directory on tmpfs (not the disk-backed XDG_RUNTIME_DIR), no credentials for the editor, nothing left after', () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'v']);
    cli.ok(['secrets', 'set', 'v:note'], { input: 'first' });
    const { editor, record } = recordingEditor(cli.root, 'printf "edited" >> "$1"');
    cli.ok(['secrets', 'set', 'v:note', '--edit'], { env: { EDITOR: editor } });
    expect(cli.ok(['secrets', 'get', 'v:note']).out).toBe('firstedited');
    const [file, fsType, fileMode, dirMode] = fs.readFileSync(record, 'utf8').trim().split('\n');
    expect(['tmpfs', 'ramfs']).toContain(fsType);
    expect([fileMode, dirMode]).toEqual(['600', '700']);
    expect(fs.existsSync(path.dirname(file!))).toBe(false);
    expect(credentialLines(fs.readFileSync(`${record}.env`, 'utf8'))).toEqual([]);
  });

  it.each(['SIGTERM', 'SIGINT', 'SIGHUP'] as const)(
    '--edit interrupted by %s: the editor is stopped, the copy wiped, keynode dies by the signal, nothing saved',
    async (signal) => {
      const cli = cliSandbox();
      cli.init();
      cli.ok(['vaults', 'create', 'v']);
      cli.ok(['secrets', 'set', 'v:note'], { input: 'before' });
      const { editor, record } = recordingEditor(cli.root, 'printf "half-typed" >> "$1"\nexec sleep 60');
      const child = spawn(process.execPath, [CLI, 'secrets', 'set', 'v:note', '--edit'], { env: { ...cli.env, EDITOR: editor }, stdio: 'ignore' });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.on('exit', (code, sig) => resolve({ code, signal: sig })),
      );
      const file = (await waitFor(() => readIfExists(record), 'the editor to start')).split('\n')[0]!;
      expect(fs.existsSync(file)).toBe(true);
      child.kill(signal);
      expect(await exited).toEqual({ code: null, signal });
      expect(fs.existsSync(path.dirname(file))).toBe(false);
      expect(cli.ok(['secrets', 'get', 'v:note']).out).toBe('before');
    },
  );

  it('--edit with an editor that ignores SIGTERM: it is killed after a grace period, and the copy still goes', async () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'v']);
    const { editor, record } = recordingEditor(cli.root, "trap '' TERM INT HUP\nwhile :; do sleep 0.2; done");
    const child = spawn(process.execPath, [CLI, 'secrets', 'set', 'v:note', '--edit'], { env: { ...cli.env, EDITOR: editor }, stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
    const file = (await waitFor(() => readIfExists(record), 'the editor to start')).split('\n')[0]!;
    child.kill('SIGTERM');
    expect(await exited).toBe('SIGTERM');
    expect(fs.existsSync(path.dirname(file))).toBe(false);
  });

  it('--edit: an editor that fails, or removes the file, saves nothing and says so', () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'v']);
    cli.ok(['secrets', 'set', 'v:note'], { input: 'kept' });
    for (const [body, code] of [
      ['rm -f "$1"', 9],
      ['exit 3', 9],
      ['rm -f "$1"; ln -s /etc/hostname "$1"', 9],
      ['rm -f "$1"; mkdir "$1"', 9],
      ['rm -f "$1"; mkfifo "$1"', 9],
    ] as const) {
      const { editor } = recordingEditor(cli.root, body);
      expect(cli.run(['secrets', 'set', 'v:note', '--edit'], { env: { EDITOR: editor } }).code, body).toBe(code);
    }
    expect(cli.run(['secrets', 'set', 'v:note', '--edit'], { env: { EDITOR: '/nonexistent/editor' } }).code).toBe(9);
    expect(cli.ok(['secrets', 'get', 'v:note']).out).toBe('kept');
  });

  it('--edit sweeps edit directories left by a keynode that was killed outright', () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'v']);
    let dead = 4_000_000;
    while (spawnSync('kill', ['-0', String(dead)]).status === 0) dead--;
    const stale = path.join(cli.env.XDG_RUNTIME_DIR!, `keynode-edit-${dead}-zzzzzz`);
    fs.mkdirSync(stale, { mode: 0o700 });
    fs.writeFileSync(path.join(stale, 'secret'), 'from a SIGKILLed keynode', { mode: 0o600 });
    const { editor } = recordingEditor(cli.root, 'printf x >> "$1"');
    cli.ok(['secrets', 'set', 'v:note', '--edit'], { env: { EDITOR: editor } });
    expect(fs.existsSync(stale)).toBe(false);
  });

  it('--copy: the clearing helper shows nothing derived from the value in its command line, and holds no credentials', async () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'v']);
    cli.ok(['secrets', 'set', 'v:one'], { input: 'first-secret' });
    cli.ok(['secrets', 'set', 'v:two'], { input: 'second-secret' });
    // A stand-in xclip backed by a file; on paste (the helper's check) it records its parent,
    // i.e. the helper: command line and environment, as another user could see them with ps.
    const bin = path.join(cli.root, 'bin');
    const board = path.join(cli.root, 'clipboard');
    const seen = path.join(cli.root, 'seen');
    fs.mkdirSync(bin);
    fs.mkdirSync(seen);
    fs.writeFileSync(
      path.join(bin, 'xclip'),
      [
        '#!/bin/sh',
        `case " $* " in`,
        `  *" -o "*) tr '\\0' '\\n' < /proc/$PPID/cmdline > "${seen}/cmdline.$PPID"; tr '\\0' '\\n' < /proc/$PPID/environ > "${seen}/environ.$PPID"; cat "${board}" 2>/dev/null ;;`,
        `  *) env > "${seen}/copy-env.$$"; cat > "${board}" ;;`,
        'esac',
      ].join('\n'),
      { mode: 0o755 },
    );
    const env = { DISPLAY: ':99', PATH: `${bin}:${process.env.PATH ?? ''}`, KEYNODE_CLIPBOARD_SECONDS: '1' };
    cli.ok(['secrets', 'get', 'v:one', '--copy'], { env });
    cli.ok(['secrets', 'get', 'v:two', '--copy'], { env });
    const cmdlines = await waitFor(() => {
      const files = fs.readdirSync(seen).filter((f) => f.startsWith('cmdline.'));
      return files.length === 2 && files.map((f) => fs.readFileSync(path.join(seen, f), 'utf8'));
    }, 'both helpers to check the clipboard');
    await waitFor(() => fs.readFileSync(board, 'utf8') === '', 'the clipboard to be cleared');
    // The same command line for two different values: nothing in it comes from a value.
    expect(cmdlines[0]).toBe(cmdlines[1]);
    for (const value of ['first-secret', 'second-secret']) {
      expect(cmdlines[0]).not.toContain(value);
      expect(cmdlines[0]).not.toContain(crypto.createHash('sha256').update(value).digest('hex'));
    }
    for (const file of fs.readdirSync(seen).filter((f) => !f.startsWith('cmdline.'))) {
      expect(credentialLines(fs.readFileSync(path.join(seen, file), 'utf8')), file).toEqual([]);
    }
  });

  it('secrets env and import pass start their programs without keynode credentials', () => {
    const cli = cliSandbox();
    cli.init();
    cli.ok(['vaults', 'create', 'v']);
    cli.ok(['secrets', 'set', 'v:token'], { input: 't' });
    const dump = cli.ok(['secrets', 'env', 'v:token', '--', 'env'], { env: { KEYNODE_RECOVERY_PHRASE: 'x y z', KEYNODE_NEW_PASSWORD: 'n' } }).out;
    expect(dump).toContain('TOKEN=t');
    expect(credentialLines(dump)).toEqual([]);
    // A stand-in gpg that records its environment.
    const bin = path.join(cli.root, 'bin');
    fs.mkdirSync(bin);
    const envFile = path.join(cli.root, 'gpg-env');
    fs.writeFileSync(path.join(bin, 'gpg'), `#!/bin/sh\nenv > "${envFile}"\necho decrypted\n`, { mode: 0o755 });
    const store = path.join(cli.root, 'store');
    fs.mkdirSync(store);
    fs.writeFileSync(path.join(store, 'entry.gpg'), 'x');
    cli.ok(['import', 'pass', '--store', store, '--vault', 'p'], { env: { PATH: `${bin}:${process.env.PATH ?? ''}` } });
    expect(fs.readFileSync(envFile, 'utf8')).toContain('PATH=');
    expect(credentialLines(fs.readFileSync(envFile, 'utf8'))).toEqual([]);
  });
});
