import { KeynodeError } from '../errors.js';

/**
 * .env files: `NAME=value` lines, `export ` allowed, `#` comments, blank lines.
 * Values are unquoted (trimmed; ` #` starts a comment), 'single-quoted' (literal), or
 * "double-quoted" (escapes \n \r \t \" \\ \$ \`; may span lines). serialize() always writes
 * double-quoted values that both parse() and a POSIX shell (`. file`, `set -a`) read back
 * exactly: only \ " $ ` are escaped (the four characters special inside a shell's double
 * quotes) and line breaks are written as they are, since a shell would keep `\n` literally.
 * Errors give the line only: a file of secrets must never be echoed into a message.
 */
const KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const DOUBLE_QUOTE_ESCAPES = new Map([
  ['n', '\n'],
  ['r', '\r'],
  ['t', '\t'],
  ['"', '"'],
  ['\\', '\\'],
  ['$', '$'],
  ['`', '`'],
]);

export function parseDotenv(text: string): Array<{ name: string; value: string }> {
  const out: Array<{ name: string; value: string }> = [];
  let i = 0;
  let line = 1;
  const fail = (why: string): never => {
    throw new KeynodeError('ERR_INVALID_ARGUMENT', `.env line ${line}: ${why}`, { line });
  };
  while (i < text.length) {
    // Skip blank space and comments between entries.
    const rest = /^[ \t]*(#[^\n]*)?(\r?\n|$)/.exec(text.slice(i));
    if (rest && rest[0].length > 0) {
      i += rest[0].length;
      if (rest[2]) line++;
      continue;
    }
    const head = /^[ \t]*(?:export[ \t]+)?([^=\s]+)[ \t]*=[ \t]*/.exec(text.slice(i));
    if (!head) fail('expected NAME=value');
    const name = head![1]!;
    if (!KEY.test(name)) fail('the name before = is not valid (letters, digits, _ . -, not starting with a digit)');
    i += head![0].length;
    let value = '';
    const quote = text[i];
    if (quote === '"' || quote === "'") {
      const opened = line;
      i++;
      for (;;) {
        if (i >= text.length) {
          line = opened;
          fail('unterminated quoted value');
        }
        const char = text[i]!;
        if (char === quote) {
          i++;
          break;
        }
        if (char === '\n') line++;
        if (quote === '"' && char === '\\' && i + 1 < text.length) {
          const next = text[i + 1]!;
          value += DOUBLE_QUOTE_ESCAPES.get(next) ?? `\\${next}`;
          i += 2;
          continue;
        }
        value += char;
        i++;
      }
      const tail = /^[ \t]*(#[^\n]*)?(\r?\n|$)/.exec(text.slice(i));
      if (!tail) fail('unexpected text after the closing quote');
      i += tail![0].length;
      if (tail![2]) line++;
    } else {
      const end = text.indexOf('\n', i);
      const raw = text.slice(i, end < 0 ? text.length : end).replace(/\r$/, '');
      value = raw.replace(/[ \t]+#.*$/, '').trim();
      i = end < 0 ? text.length : end + 1;
      line++;
    }
    out.push({ name, value });
  }
  return out;
}

export function serializeDotenv(vars: Record<string, string>): string {
  return Object.entries(vars)
    .map(([name, value]) => `${shellName(name)}="${value.replace(/[\\"$`]/g, '\\$&')}"\n`)
    .join('');
}

/** Names are written bare, so one that is not a plain identifier would be shell syntax. */
function shellName(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
    throw new KeynodeError('ERR_ENV_NAME', `"${name}" is not a valid environment variable name for a shell`, { name });
  return name;
}

/** POSIX shell: `export NAME='value'`, single quotes escaped as '\''. */
export function serializeShell(vars: Record<string, string>): string {
  return Object.entries(vars)
    .map(([name, value]) => `export ${shellName(name)}='${value.replace(/'/g, `'\\''`)}'\n`)
    .join('');
}
