import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, cliSandbox, startAgent } from '../helpers/cli.js';
import { tempDir } from '../helpers/index.js';

/**
 * With an agent running, each command loads the CLI entry and one CommonJS bundle
 * (scripts/postbuild.mjs), nothing else of ours and no ES module: that is what keeps every
 * command near Node's own start (src/bench/cli.ts has the figures; no timing is asserted here).
 */
const REPO = path.resolve(CLI, '../../..');
const BUNDLES = path.join(REPO, 'dist/cli/bundles');

/** node options that log every file a run loads (CommonJS at exit, ES modules as resolved) to `log`. */
function recorder(log: string): string[] {
  const root = tempDir('keynode-loaded-');
  const hooks = path.join(root, 'hooks.mjs');
  fs.writeFileSync(
    hooks,
    `import fs from 'node:fs';\nexport async function resolve(specifier, context, next) {\n  const result = await next(specifier, context);\n  fs.appendFileSync(${JSON.stringify(log)}, result.url + '\\n');\n  return result;\n}\n`,
  );
  const register = path.join(root, 'register.mjs');
  fs.writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hooks}`)});\n`);
  const atExit = path.join(root, 'atExit.cjs');
  fs.writeFileSync(
    atExit,
    `process.on('exit', () => require('node:fs').appendFileSync(${JSON.stringify(log)}, Object.keys(require.cache).map((file) => 'file://' + file).join('\\n') + '\\n'));\n`,
  );
  return ['--import', register, '--require', atExit];
}

describe('CLI bundles', () => {
  it('each command with an agent running loads the entry and one bundle, nothing else of ours', () => {
    const cli = cliSandbox();
    cli.init();
    startAgent(cli);
    cli.ok(['vaults', 'create', 'app']);
    cli.ok(['secrets', 'set', 'app:dir/a'], { input: 'one' });
    cli.ok(['secrets', 'set', 'app:db/password'], { input: 'two' });
    const valueFile = path.join(cli.root, 'value');
    fs.writeFileSync(valueFile, 'from a file', { mode: 0o600 });
    const log = path.join(cli.root, 'loaded.log');
    const options = recorder(log);
    const loaded = (args: string[]) => {
      fs.rmSync(log, { force: true });
      const result = spawnSync(process.execPath, [...options, CLI, ...args], { env: cli.env, input: '', encoding: 'utf8' });
      expect(result.status, `keynode ${args.join(' ')}: ${result.stderr}`).toBe(0);
      const urls = fs
        .readFileSync(log, 'utf8')
        .split('\n')
        .filter((url) => url.startsWith('file://') && !url.includes('/keynode-loaded-'));
      return [...new Set(urls.map((url) => path.relative(REPO, url.slice('file://'.length))))].sort();
    };
    const cases: Array<[string[], string]> = [
      [['secrets', 'set', 'app:filed', '--file', valueFile], 'secrets-set'],
      [['secrets', 'ls', 'app:dir'], 'secrets-ls'],
      [['secrets', 'stat', 'app:db/password'], 'secrets-stat'],
      [['secrets', 'mkdir', 'app:made'], 'secrets-mkdir'],
      [['secrets', 'cp', 'app:dir/a', 'app:copy'], 'secrets-transfer'],
      [['secrets', 'mv', 'app:copy', 'app:moved'], 'secrets-transfer'],
      [['secrets', 'rm', 'app:moved'], 'secrets-rm'],
      [['secrets', 'env', 'app:dir', '--format', 'dotenv'], 'secrets-env'],
      [['--json', 'vaults', 'list'], 'vaults-list'],
      [['vaults', 'log', 'app', '-n', '5'], 'vaults-log'],
      [['vaults', 'diff', 'app', 'HEAD~1', 'HEAD'], 'vaults-diff'],
      [['vaults', 'tag', 'app', 'prod'], 'vaults-tag'],
      [['status'], 'status'],
      [['agent', 'status'], 'agent-control'],
    ];
    for (const [args, bundle] of cases) {
      expect({ args, files: loaded(args) }).toEqual({ args, files: [`dist/cli/bundles/${bundle}.cjs`, 'dist/cli/keynode.cjs', 'package.json'] });
    }
    // The fast path and --version need no bundle at all.
    expect(loaded(['secrets', 'get', 'app:db/password'])).toEqual(['dist/cli/keynode.cjs']);
    expect(loaded(['--version'])).toEqual(['dist/cli/keynode.cjs', 'package.json']);
  });

  it('bundles carry no heavy layer: the node, vault, key and agent code load only in process, on demand', () => {
    const names = fs.readdirSync(BUNDLES).filter((name) => name.endsWith('.cjs'));
    expect(names.length).toBeGreaterThan(25);
    for (const name of [...names.map((n) => path.join(BUNDLES, n)), CLI]) {
      // esbuild names every module it bundles in a comment line: `// dist/node/KeynodeNode.js`.
      const modules = fs.readFileSync(name, 'utf8').match(/^\/\/ \S+\.(m?js|cjs)$/gm) ?? [];
      expect(modules.length).toBeGreaterThan(0);
      const heavy = modules.filter((line) =>
        /node_modules\/(?!commander\/)|dist\/(agent|vaults\/(?!paths)|node\/(?!nodePath)|keys|storage\/(?!files)|crypto|api\/(handlers|schema)|importers)\//.test(
          line,
        ),
      );
      expect({ name: path.basename(name), heavy }).toEqual({ name: path.basename(name), heavy: [] });
    }
  });
});
