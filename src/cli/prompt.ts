import fs from 'node:fs';
import tty from 'node:tty';
import { KeynodeError } from '../errors.js';

/** Whether a person is at a terminal we can ask (for passwords and confirmations). */
export function canPrompt(): boolean {
  if (process.env.KEYNODE_NO_PROMPT === '1') return false;
  try {
    fs.closeSync(fs.openSync('/dev/tty', 'r'));
    return Boolean(process.stderr.isTTY || process.stdin.isTTY);
  } catch {
    return false;
  }
}

/**
 * The controlling terminal while prompts are being asked. Raw mode (no echo) is on before a
 * question is written, so an answer typed as the question appears is never shown, and it stays
 * on from one prompt to the next asked right after. One reader serves the whole sequence: what
 * was typed ahead (`pw⏎pw⏎`) is kept in `pending` and answers the next prompt, not lost.
 */
interface Terminal {
  input: tty.ReadStream;
  writeFd: number;
  /** Called when input arrives (or ends) while a prompt waits for it. */
  wake?: () => void;
  /** The terminal went away (hangup): no answer will come. */
  ended: boolean;
}

let terminal: Terminal | undefined;
/** Read from the terminal but not yet consumed by a prompt (typed ahead). */
let pending = '';
/** The last answer ended with '\r': a '\n' right after it is part of that line end. */
let skipLineFeed = false;
let release: NodeJS.Immediate | undefined;
let exitHookInstalled = false;

function openTerminal(): Terminal {
  if (release) clearImmediate(release);
  release = undefined;
  if (terminal) return terminal;
  const readFd = fs.openSync('/dev/tty', 'r');
  const writeFd = fs.openSync('/dev/tty', 'w');
  const input = new tty.ReadStream(readFd);
  input.setRawMode(true); // before anything is written: nothing typed from now on is echoed
  input.setEncoding('utf8');
  const opened: Terminal = { input, writeFd, ended: false };
  input.on('data', (chunk: string) => {
    pending += chunk;
    opened.wake?.();
  });
  const end = () => {
    opened.ended = true;
    opened.wake?.();
  };
  input.on('end', end);
  input.on('error', end);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', closeTerminal); // never leave the terminal without echo
  }
  terminal = opened;
  return opened;
}

/** Give the terminal back (echo on) once no prompt follows in the same turn of the event loop. */
function releaseSoon(): void {
  if (release) clearImmediate(release);
  release = setImmediate(closeTerminal);
}

function closeTerminal(): void {
  if (release) clearImmediate(release);
  release = undefined;
  if (!terminal) return;
  const { input, writeFd } = terminal;
  terminal = undefined;
  input.setRawMode(false);
  input.destroy();
  fs.closeSync(writeFd);
}

/**
 * Read a line from the controlling terminal (not stdin, which may carry a secret value).
 * With `hidden`, nothing is echoed. Ctrl-C cancels.
 */
export async function promptLine(question: string, options: { hidden?: boolean } = {}): Promise<string> {
  const term = openTerminal();
  const write = (text: string) => fs.writeSync(term.writeFd, text);
  write(question);
  let line = '';
  try {
    for (;;) {
      let consumed = 0;
      for (const char of pending) {
        consumed += char.length;
        if (skipLineFeed) {
          skipLineFeed = false;
          if (char === '\n') continue;
        }
        if (char === '\r' || char === '\n') {
          skipLineFeed = char === '\r';
          pending = pending.slice(consumed);
          write('\n');
          releaseSoon();
          return line;
        }
        if (char === '\u0003' || char === '\u0004') {
          pending = '';
          write('\n');
          closeTerminal();
          throw new KeynodeError('ERR_CANCELLED', 'cancelled');
        }
        if (char === '\u007f' || char === '\b') {
          if (line.length > 0) {
            line = [...line].slice(0, -1).join('');
            if (!options.hidden) write('\b \b');
          }
          continue;
        }
        if (char === '\u0015') {
          // Ctrl-U: start the line again.
          if (!options.hidden) write('\b \b'.repeat([...line].length));
          line = '';
          continue;
        }
        line += char;
        if (!options.hidden) write(char);
      }
      pending = '';
      if (term.ended) throw new KeynodeError('ERR_CANCELLED', 'cancelled: the terminal closed');
      await new Promise<void>((resolve) => (term.wake = resolve));
      term.wake = undefined;
    }
  } catch (error) {
    closeTerminal();
    throw error;
  }
}

/** Ask for a new secret twice; they must match. */
export async function promptNewSecret(what: string): Promise<string> {
  const first = await promptLine(`${what}: `, { hidden: true });
  const second = await promptLine(`${what} (again): `, { hidden: true });
  if (first !== second) throw new KeynodeError('ERR_INVALID_ARGUMENT', `the two ${what.toLowerCase()} entries do not match`);
  return first;
}

/** Ask the person to confirm a dangerous action by typing `expected`; without a terminal, `--yes` is required. */
export async function confirmAction(action: string, expected: string, yes: boolean | undefined): Promise<void> {
  if (yes) return;
  if (!canPrompt()) {
    throw new KeynodeError('ERR_CONFIRMATION_REQUIRED', `${action}: confirmation needed; pass --yes to confirm without a terminal`);
  }
  const answer = await promptLine(`${action}. Type "${expected}" to confirm: `);
  if (answer.trim() !== expected) throw new KeynodeError('ERR_CANCELLED', 'not confirmed; nothing was changed');
}
