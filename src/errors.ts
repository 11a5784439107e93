/**
 * Every failure keynode reports is a KeynodeError with a stable `code`. Users, scripts and
 * tests match on `code` (and the CLI's exit code), never on message text.
 * Messages never contain secret values.
 */

/** Stable error codes, grouped by the CLI exit code each maps to. */
export const EXIT_CODES = {
  ERR_INTERNAL: 1,
  ERR_USAGE: 2,
  ERR_INVALID_ARGUMENT: 2,
  ERR_INVALID_PATH: 2,
  ERR_INVALID_NAME: 2,
  ERR_INVALID_REQUEST: 2,
  ERR_ENV_NAME: 2,
  ERR_TEMPLATE: 2,
  ERR_NODE_NOT_FOUND: 3,
  ERR_NODE_EXISTS: 3,
  ERR_WRONG_PASSWORD: 4,
  ERR_PASSWORD_REQUIRED: 4,
  ERR_INVALID_PHRASE: 4,
  ERR_WRONG_PHRASE: 4,
  ERR_VAULT_NOT_FOUND: 5,
  ERR_VAULT_EXISTS: 5,
  ERR_SECRET_NOT_FOUND: 5,
  ERR_COMMIT_NOT_FOUND: 5,
  ERR_PATH_EXISTS: 5,
  ERR_IS_A_DIRECTORY: 5,
  ERR_NOT_A_DIRECTORY: 5,
  ERR_NODE_LOCKED: 6,
  ERR_INTEGRITY: 7,
  ERR_NO_SPACE: 8,
  ERR_IO: 8,
  ERR_CANCELLED: 9,
  ERR_CONFIRMATION_REQUIRED: 9,
  ERR_NOT_SUPPORTED: 10,
  ERR_UNAUTHENTICATED: 11,
  ERR_AGENT_LOCKED: 11,
  ERR_AGENT_NOT_RUNNING: 12,
  ERR_AGENT_RUNNING: 12,
  ERR_AGENT_BUSY: 12,
} as const;

export type ErrorCode = keyof typeof EXIT_CODES;

export class KeynodeError extends Error {
  readonly code: ErrorCode;
  readonly data: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeynodeError';
    this.code = code;
    this.data = data;
  }

  get exitCode(): number {
    return EXIT_CODES[this.code];
  }
}

export function isKeynodeError(value: unknown, code?: ErrorCode): value is KeynodeError {
  return value instanceof KeynodeError && (code === undefined || value.code === code);
}

/** Map an operating-system error from node:fs to a KeynodeError, keeping the original as cause. */
export function fromSystemError(error: unknown, what: string): KeynodeError {
  if (error instanceof KeynodeError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new KeynodeError('ERR_NO_SPACE', `no space left on device while ${what}; nothing was changed`, {}, { cause: error });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new KeynodeError('ERR_IO', `permission denied while ${what}`, {}, { cause: error });
  }
  if (code === 'EROFS') {
    return new KeynodeError('ERR_IO', `read-only file system while ${what}`, {}, { cause: error });
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new KeynodeError('ERR_IO', `I/O error while ${what}: ${detail}`, {}, { cause: error });
}
