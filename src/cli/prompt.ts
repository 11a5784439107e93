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
 * Read a line from the controlling terminal (not stdin, which may carry a secret value).
 * With `hidden`, nothing is echoed. Ctrl-C cancels.
 */
export async function promptLine(question: string, options: { hidden?: boolean } = {}): Promise<string> {
  const readFd = fs.openSync('/dev/tty', 'r');
  const writeFd = fs.openSync('/dev/tty', 'w');
  const input = new tty.ReadStream(readFd);
  const write = (text: string) => fs.writeSync(writeFd, text);
  write(question);
  input.setRawMode(true);
  input.setEncoding('utf8');
  try {
    return await new Promise<string>((resolve, reject) => {
      let line = '';
      input.on('data', (chunk: string) => {
        for (const char of chunk) {
          if (char === '\r' || char === '\n') {
            write('\n');
            resolve(line);
            return;
          }
          if (char === '\u0003' || char === '\u0004') {
            write('\n');
            reject(new KeynodeError('ERR_CANCELLED', 'cancelled'));
            return;
          }
          if (char === '\u007f' || char === '\b') {
            if (line.length > 0) {
              line = [...line].slice(0, -1).join('');
              if (!options.hidden) write('\b \b');
            }
            continue;
          }
          line += char;
          if (!options.hidden) write(char);
        }
      });
    });
  } finally {
    input.setRawMode(false);
    input.destroy();
    fs.closeSync(writeFd);
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
