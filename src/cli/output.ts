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

/** Bytes gathered before a write to stdout, and how long they may wait once output has begun. */
const OUTPUT_BATCH_BYTES = 64 * 1024;
const OUTPUT_BATCH_MS = 20;

/**
 * Writes to stdout in batches, waiting whenever stdout's buffer is full: a slow reader (a pager,
 * a paused pipe) slows whoever feeds it instead of letting output pile up in memory. The first
 * piece goes out at once, so output starts as soon as there is some.
 */
class OutputWriter {
  private pending: string[] = [];
  private pendingBytes = 0;
  private lastFlush = 0;

  async write(text: string): Promise<void> {
    this.pending.push(text);
    this.pendingBytes += text.length;
    if (this.pendingBytes >= OUTPUT_BATCH_BYTES || performance.now() - this.lastFlush >= OUTPUT_BATCH_MS) await this.flush();
  }

  async flush(): Promise<void> {
    this.lastFlush = performance.now();
    if (this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending = [];
    this.pendingBytes = 0;
    if (!process.stdout.write(text)) await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
  }
}

/**
 * Print a list as it comes, exactly as `emit` would print it whole: with --json the one
 * document `{ ...head, [field]: [items] }` (pretty-printed, `field` last), written item by item
 * so it is valid JSON once complete; else `line(item)` per item. Nothing is printed before the
 * first item or the end, so an error found first prints as it always did.
 */
export async function emitList<T>(
  options: OutputOptions,
  head: Record<string, unknown>,
  field: string,
  pages: AsyncIterable<T[]>,
  line: (item: T) => string,
): Promise<void> {
  const out = new OutputWriter();
  let count = 0;
  let lastText = '';
  const opening = () => {
    const document = JSON.stringify({ ...head, [field]: [] }, null, 2);
    return document.slice(0, document.lastIndexOf('[') + 1); // `{ ...head, "field": [`
  };
  for await (const page of pages) {
    let text = '';
    for (const item of page) {
      if (options.json) {
        text += `${count === 0 ? opening() : ','}\n    ${JSON.stringify(item, null, 2).replaceAll('\n', '\n    ')}`;
      } else {
        // The lines joined by '\n', then a final '\n' unless the text ends with one: as `emit`.
        const piece = (count === 0 ? '' : '\n') + line(item);
        if (piece !== '') lastText = piece;
        text += piece;
      }
      count++;
    }
    await out.write(text);
  }
  if (options.json) await out.write(count === 0 ? `${opening()}]\n}\n` : '\n  ]\n}\n');
  else if (lastText !== '' && !lastText.endsWith('\n')) await out.write('\n');
  await out.flush();
}
