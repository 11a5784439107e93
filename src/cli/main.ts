#!/usr/bin/env node
import { createRequire } from 'node:module';
import { bundleOf, commandFor } from './commandTable.js';
import { tryFastPath } from './fast.js';

// Built into dist/cli/keynode.cjs (scripts/postbuild.mjs): a CommonJS bundle starts ~10 ms
// faster than ES modules, which matters for `secrets get` in a loop. So no top-level await here.

// A closed pipe (keynode ... | head) is not an error worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

/** What each bundle of dist/cli/bundles/ exports: program.ts's run with its own commands. */
interface Bundle {
  run: (argv: string[]) => Promise<number>;
}

async function main(): Promise<number> {
  const requireHere = createRequire(import.meta.url);
  // `--version` belongs to `secrets get` (a past version), so the root answers it only alone.
  if (process.argv.length === 3 && process.argv[2] === '--version') {
    process.stdout.write(`${(requireHere('../../package.json') as { version: string }).version}\n`);
    return 0;
  }
  const fast = await tryFastPath(process.argv);
  if (fast !== undefined) return fast;
  // One CommonJS file holds the command that runs, commander and what they import; the whole
  // tree only when the words name no single command (help, completion, typos).
  const { run } = requireHere(`./bundles/${bundleOf(commandFor(process.argv.slice(2)))}.cjs`) as Bundle;
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
