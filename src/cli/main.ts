#!/usr/bin/env node
import { tryFastPath } from './fast.js';

// A closed pipe (keynode ... | head) is not an error worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const fast = await tryFastPath(process.argv);
if (fast !== undefined) {
  process.exitCode = fast;
} else {
  const { run } = await import('./program.js');
  process.exitCode = await run(process.argv);
}
