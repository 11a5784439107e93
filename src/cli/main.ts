#!/usr/bin/env node
import { tryFastPath } from './fast.js';

// Built into dist/cli/keynode.cjs (scripts/postbuild.mjs): a CommonJS bundle starts ~10 ms
// faster than ES modules, which matters for `secrets get` in a loop. So no top-level await here.

// A closed pipe (keynode ... | head) is not an error worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

async function main(): Promise<number> {
  const fast = await tryFastPath(process.argv);
  if (fast !== undefined) return fast;
  const { run } = await import('./program.js');
  return run(process.argv);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`keynode: internal error: ${error instanceof Error ? error.message : String(error)} (ERR_INTERNAL)\n`);
    process.exitCode = 1;
  },
);
