// After tsc: bundle the CLI entry (with its fast path for `secrets get/set` through the agent)
// into one file, since loading a dozen ES modules costs ~10 ms of a ~45 ms invocation. The full
// command tree (./program.js) stays a separate, lazily imported module.
import fs from 'node:fs';
import { build } from 'esbuild';

const entry = new URL('../dist/cli/main.js', import.meta.url).pathname;
await build({
  entryPoints: [entry],
  outfile: entry,
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['./program.js'],
  logLevel: 'warning',
});
fs.chmodSync(entry, 0o755);
