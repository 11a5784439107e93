import { KeynodeError } from '../errors.js';

/**
 * .env files: `NAME=value` lines, `export ` allowed, `#` comments, blank lines.
 * Values are unquoted (trimmed; ` #` starts a comment), 'single-quoted' (literal), or
 * "double-quoted" (escapes \n \r \t \" \\ \$; may span lines). serialize() always writes
 * double-quoted values, which parse() reads back exactly.
 */
const KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

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
    if (!KEY.test(name)) fail(`"${name}" is not a valid name`);
    i += head![0].length;
    let value = '';
    const quote = text[i];
    if (quote === '"' || quote === "'") {
      i++;
      for (;;) {
        if (i >= text.length) fail('unterminated quoted value');
        const char = text[i]!;
        if (char === quote) {
          i++;
          break;
        }
        if (char === '\n') line++;
        if (quote === '"' && char === '\\' && i + 1 < text.length) {
          const next = text[i + 1]!;
          value += ({ n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\', $: '$' } as Record<string, string>)[next] ?? `\\${next}`;
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
    .map(([name, value]) => `${name}="${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '\\$').replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"\n`)
    .join('');
}

/** POSIX shell: `export NAME='value'`, single quotes escaped as '\''. */
export function serializeShell(vars: Record<string, string>): string {
  return Object.entries(vars)
    .map(([name, value]) => `export ${name}='${value.replace(/'/g, `'\\''`)}'\n`)
    .join('');
}
