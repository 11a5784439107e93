import { KeynodeError } from '../errors.js';

/**
 * Environment variable names for secrets (documented in README, "secrets env"):
 * a secret's path relative to the reference given (its base name when the reference is the
 * secret itself), upper-cased, each character outside A-Z and 0-9 replaced by '_', prefixed
 * with '_' if it would start with a digit. `db/password` -> DB_PASSWORD, `api-key` -> API_KEY.
 */
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function envNameFor(relativePath: string): string {
  const name = relativePath.toUpperCase().replace(/[^A-Z0-9]/g, '_');
  return /^[0-9]/.test(name) ? `_${name}` : name;
}

export function validateEnvName(name: string): string {
  if (!ENV_NAME_PATTERN.test(name)) {
    throw new KeynodeError('ERR_ENV_NAME', `"${name}" is not a valid environment variable name (letters, digits and _, not starting with a digit)`, { name });
  }
  return name;
}

export interface EnvSource {
  /** Where the value came from, for collision messages: "vault:path". */
  source: string;
  value: Buffer;
}

/**
 * Collect name -> value, refusing two different secrets under one name and values that
 * cannot live in an environment (NUL bytes, invalid UTF-8).
 */
export class EnvCollector {
  private readonly vars = new Map<string, EnvSource>();

  add(name: string, source: string, value: Buffer): void {
    validateEnvName(name);
    const existing = this.vars.get(name);
    if (existing && existing.source !== source) {
      throw new KeynodeError('ERR_ENV_NAME', `${existing.source} and ${source} both map to ${name}; name one with --var NAME=VAULT:PATH`, { name });
    }
    if (value.includes(0)) throw new KeynodeError('ERR_ENV_NAME', `${source} contains a NUL byte and cannot be an environment variable`, { name });
    if (!Buffer.from(value.toString('utf8'), 'utf8').equals(value)) {
      throw new KeynodeError('ERR_ENV_NAME', `${source} is binary (not UTF-8) and cannot be an environment variable`, { name });
    }
    this.vars.set(name, { source, value });
  }

  toObject(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of [...this.vars.keys()].sort()) out[name] = this.vars.get(name)!.value.toString('utf8');
    return out;
  }
}
