import { KeynodeError } from '../errors.js';

/** "90s", "15m", "1h", "500ms", or a bare number of seconds; 0 means off. */
export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new KeynodeError('ERR_USAGE', `${flag} takes a duration like 30s, 15m, 1h or 0, got "${text}"`);
  const value = Number(match[1]);
  const unit = match[2] ?? 's';
  return value * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit]!;
}
