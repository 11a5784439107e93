// After tsc: bundle the CLI entry (with its fast path for `secrets get/set` through the agent)
// into one CommonJS file, dist/cli/keynode.cjs (package.json "bin"). Loading a dozen ES modules
// cost ~14 ms of a ~50 ms invocation; one CommonJS file costs ~2. The full command tree
// (./program.js, ESM) stays separate and is imported only when the fast path does not apply.
import fs from 'node:fs';
import { build } from 'esbuild';

const entry = new URL('../dist/cli/main.js', import.meta.url).pathname;
const outfile = new URL('../dist/cli/keynode.cjs', import.meta.url).pathname;
await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['./program.js'],
  logLevel: 'warning',
});
fs.chmodSync(outfile, 0o755);
