import { KeynodeError, type ErrorCode } from '../errors.js';
import { EXIT_CODES, withHint } from './exitCodes.js';

export interface OutputOptions {
  json?: boolean;
}

/** Print a result: JSON (one document on stdout) with --json, else the human text. */
export function emit(options: OutputOptions, json: unknown, human: string | (() => string)): void {
  if (options.json) {
    process.stdout.write(JSON.stringify(json, null, 2) + '\n');
    return;
  }
  const text = typeof human === 'function' ? human() : human;
  if (text !== '') process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

/** Notes for a person (progress, warnings) go to stderr, never into --json output. */
export function note(options: OutputOptions, text: string): void {
  if (!options.json) process.stderr.write(text + '\n');
}

/** Report an error in one line (or as JSON) and return the exit code to use. */
export function reportError(error: unknown, json: boolean): number {
  let code: ErrorCode = 'ERR_INTERNAL';
  let message: string;
  if (error instanceof KeynodeError) {
    code = error.code;
    message = withHint(error.code, error.message);
  } else {
    message = `internal error: ${error instanceof Error ? error.message : String(error)}`;
    if (process.env.KEYNODE_DEBUG && error instanceof Error) process.stderr.write(`${error.stack ?? ''}\n`);
  }
  if (json) process.stdout.write(JSON.stringify({ error: { code, message } }, null, 2) + '\n');
  else process.stderr.write(`keynode: ${message} (${code})\n`);
  return EXIT_CODES[code];
}
