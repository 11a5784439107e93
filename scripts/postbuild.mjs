// Make the CLI entry executable after tsc (npm links `bin` to it).
import fs from 'node:fs';
fs.chmodSync(new URL('../dist/cli/main.js', import.meta.url), 0o755);
