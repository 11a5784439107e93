// After tsc: bundle the CLI into CommonJS files (loading one CommonJS file costs ~2 ms; the ES
// module graph of a command, ~25 modules plus commander, cost ~35 ms of a ~65 ms invocation).
// - dist/cli/keynode.cjs (package.json "bin" through bin/keynode): main.js with the fast path
//   for `secrets get/set` through the agent, and the routing table (cli/commandTable.js).
// - dist/cli/bundles/NAME.cjs: program.js, commander and one command module with what they
//   import (NAME from commandTable's bundleOf); all.cjs holds the whole tree (help, completion).
// What a command loads only when it runs in process without an agent (the node, vault and key
// layers, the agent, importers) stays in the ES modules of dist/, imported on demand: bundling it
// would make every bundle several times larger, and its cost is dwarfed by unlocking the node.
// Measured figures: docs/decisions/0009-cli-bundles.md.
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const DIST = path.resolve(new URL('../dist', import.meta.url).pathname);
const CLI = path.join(DIST, 'cli');
const BUNDLES = path.join(CLI, 'bundles');

/** Layers a bundle carries even when imported lazily (light, and on every command's path). */
const BUNDLED_LAYERS = new Set(['cli', 'client', 'ipc']);

/** The specifier of `target` (a file of dist/) from a bundle written to `outDir`. */
const specifierFrom = (outDir, target) => {
  const relative = path.relative(outDir, target).split(path.sep).join('/');
  return relative.startsWith('.') ? relative : `./${relative}`;
};

/** Defined at the top of each bundle (a module may shadow `require`, as main.ts does). */
const MODULE_URL = '__keynodeModuleUrl';
const MODULE_URL_BANNER = `var ${MODULE_URL} = (relative) => require("node:url").pathToFileURL(require("node:path").join(__dirname, relative)).href;`;

function cliPlugin(outDir) {
  return {
    name: 'keynode-cli',
    setup(builder) {
      // Lazy imports of the heavy layers stay lazy ES module imports of dist/ (see above).
      builder.onResolve({ filter: /^\./ }, (args) => {
        if (args.kind !== 'dynamic-import') return undefined;
        const target = path.resolve(args.resolveDir, args.path);
        const layer = path.relative(DIST, target).split(path.sep)[0];
        if (BUNDLED_LAYERS.has(layer)) return undefined;
        return { path: specifierFrom(outDir, target), external: true };
      });
      // commander requires child_process at load for executable subcommands, which keynode has
      // none of: load it on first use instead (it brings net, dgram and more: ~1 ms).
      builder.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
        args.importer.includes(`${path.sep}node_modules${path.sep}commander${path.sep}`) ? { path: 'child_process', namespace: 'lazy-builtin' } : undefined,
      );
      builder.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({
        contents: `module.exports = new Proxy({}, { get: (_, key) => require('node:${args.path}')[key] });`,
        loader: 'js',
      }));
      // import.meta.url becomes the URL the module has in dist/, so paths made relative to it
      // (agent/start.ts finds keynode.cjs, program.ts package.json) resolve as unbundled.
      builder.onLoad({ filter: /\.js$/ }, async (args) => {
        const text = await fs.promises.readFile(args.path, 'utf8');
        if (!text.includes('import.meta')) return undefined;
        const contents = text.replaceAll('import.meta.url', `${MODULE_URL}(${JSON.stringify(path.relative(outDir, args.path))})`);
        if (contents.includes('import.meta')) throw new Error(`${args.path}: only import.meta.url can be bundled`);
        return { contents, loader: 'js' };
      });
    },
  };
}

// esbuild's __toESM copies every property of a CommonJS module onto a new object, once per
// importing module: ~1,600 getters for node:fs, node:path, node:os..., ~2-4 ms a run. An object
// whose prototype is the module reads the same names without copying them.
const TO_ESM = 'var __toESM = (mod, isNodeMode, target) => (';
const CHEAP_TO_ESM = `var __toESM = (mod, isNodeMode) => isNodeMode && mod != null && (typeof mod === "object" || typeof mod === "function") ? Object.create(mod, { default: { value: mod, enumerable: true } }) : __toESMByCopy(mod, isNodeMode);\nvar __toESMByCopy = (mod, isNodeMode, target) => (`;

async function bundle({ outfile, ...options }) {
  const outDir = path.dirname(outfile);
  const result = await build({
    ...options,
    outfile,
    write: false,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    banner: { js: MODULE_URL_BANNER },
    plugins: [cliPlugin(outDir)],
    logLevel: 'warning',
  });
  let text = result.outputFiles[0].text;
  if (text.includes('__toESM(')) {
    if (text.split(TO_ESM).length !== 2) throw new Error(`${outfile}: esbuild's __toESM helper changed; update scripts/postbuild.mjs`);
    text = text.replace(TO_ESM, CHEAP_TO_ESM);
  }
  // Written whole, then renamed: a CLI started during a build reads the old file or the new one.
  fs.mkdirSync(outDir, { recursive: true });
  const temporary = `${outfile}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, text);
  fs.renameSync(temporary, outfile);
  return outfile;
}

const { COMMANDS, bundleOf } = await import(path.join(CLI, 'commandTable.js'));
const modules = [...new Set(COMMANDS.map((entry) => entry.module))];
const commandFile = (module) => JSON.stringify(path.join(CLI, 'commands', `${module}.js`));
const programFile = JSON.stringify(path.join(CLI, 'program.js'));

const written = await Promise.all([
  bundle({ entryPoints: [path.join(CLI, 'main.js')], outfile: path.join(CLI, 'keynode.cjs') }),
  // One bundle per command module: program.js runs with that module's register functions.
  ...modules.map((module) =>
    bundle({
      stdin: {
        contents: `import { run as runProgram } from ${programFile};\nimport * as commands from ${commandFile(module)};\nexport const run = (argv) => runProgram(argv, async (entry) => commands[entry.register ?? 'register']);\n`,
        resolveDir: CLI,
        sourcefile: `${module}-entry.js`,
      },
      outfile: path.join(BUNDLES, `${bundleOf(COMMANDS.find((entry) => entry.module === module))}.cjs`),
    }),
  ),
  // The whole tree: every command module, for help, completion and anything commander decides.
  bundle({
    stdin: {
      contents: `import { run as runProgram } from ${programFile};\n${modules.map((module, index) => `import * as m${index} from ${commandFile(module)};`).join('\n')}\nconst modules = { ${modules.map((module, index) => `${JSON.stringify(module)}: m${index}`).join(', ')} };\nexport const run = (argv) => runProgram(argv, async (entry) => modules[entry.module][entry.register ?? 'register']);\n`,
      resolveDir: CLI,
      sourcefile: 'all-entry.js',
    },
    outfile: path.join(BUNDLES, `${bundleOf(undefined)}.cjs`),
  }),
]);
fs.chmodSync(path.join(CLI, 'keynode.cjs'), 0o755);
// Bundles of commands that no longer exist.
for (const name of fs.readdirSync(BUNDLES)) if (!written.includes(path.join(BUNDLES, name))) fs.rmSync(path.join(BUNDLES, name));
