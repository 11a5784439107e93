/**
 * Every failure keynode reports is a KeynodeError with a stable `code`. Users, scripts and
 * tests match on `code` (and the CLI's exit code), never on message text.
 * Messages never contain secret values.
 */

/**
 * Stable error codes. The CLI maps each to an exit status (cli/exitCodes.ts); a new code
 * needs an exit status there too (the compiler insists).
 */
export const ERROR_CODES = [
  'ERR_INTERNAL',
  'ERR_USAGE',
  'ERR_INVALID_ARGUMENT',
  'ERR_INVALID_PATH',
  'ERR_INVALID_NAME',
  'ERR_INVALID_REQUEST',
  'ERR_ENV_NAME',
  'ERR_TEMPLATE',
  'ERR_NODE_NOT_FOUND',
  'ERR_NODE_EXISTS',
  'ERR_WRONG_PASSWORD',
  'ERR_PASSWORD_REQUIRED',
  'ERR_INVALID_PHRASE',
  'ERR_WRONG_PHRASE',
  'ERR_VAULT_NOT_FOUND',
  'ERR_VAULT_EXISTS',
  'ERR_SECRET_NOT_FOUND',
  'ERR_COMMIT_NOT_FOUND',
  'ERR_PATH_EXISTS',
  'ERR_IS_A_DIRECTORY',
  'ERR_NOT_A_DIRECTORY',
  'ERR_NODE_LOCKED',
  'ERR_INTEGRITY',
  'ERR_NO_SPACE',
  'ERR_IO',
  'ERR_CANCELLED',
  'ERR_CONFIRMATION_REQUIRED',
  'ERR_NOT_SUPPORTED',
  'ERR_UNAUTHENTICATED',
  'ERR_AGENT_LOCKED',
  'ERR_AGENT_NOT_RUNNING',
  'ERR_AGENT_RUNNING',
  'ERR_AGENT_BUSY',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && KNOWN_CODES.has(value);
}

/** A KeynodeError as it crosses a boundary (the agent socket, a child's pipe): JSON-safe. */
export interface KeynodeErrorJSON {
  code: ErrorCode;
  message: string;
  data?: Record<string, unknown>;
}

const MAX_WIRE_MESSAGE_CHARS = 4096;
const WIRE_CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** Marks every KeynodeError, whichever copy of this module made it (see hasInstance below). */
const KEYNODE_ERROR = Symbol.for('keynode.KeynodeError');

export class KeynodeError extends Error {
  readonly code: ErrorCode;
  readonly data: Record<string, unknown>;

  /**
   * `instanceof` holds across copies of this module: the CLI's CommonJS bundles carry their own
   * copy and catch errors thrown by the ES modules they load lazily (scripts/postbuild.mjs).
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== KeynodeError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as { [KEYNODE_ERROR]?: unknown })[KEYNODE_ERROR] === true;
  }

  constructor(code: ErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeynodeError';
    this.code = code;
    this.data = data;
  }

  /** Code, message and data (not the stack, nor the cause: those stay in this process). */
  toJSON(): KeynodeErrorJSON {
    return Object.keys(this.data).length > 0 ? { code: this.code, message: this.message, data: this.data } : { code: this.code, message: this.message };
  }

  /**
   * The error a peer sent. Whatever arrives, the result is a KeynodeError: a code this build
   * does not know becomes ERR_INTERNAL (the original kept in data.code), a missing or
   * oversized message is replaced, data that is not a plain object is dropped.
   */
  static fromJSON(value: unknown): KeynodeError {
    const record = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
    const given = typeof record.data === 'object' && record.data !== null && !Array.isArray(record.data) ? { ...(record.data as Record<string, unknown>) } : {};
    const readable = typeof record.message === 'string' && record.message.length <= MAX_WIRE_MESSAGE_CHARS;
    // One line, and nothing a terminal would act on: control characters become U+FFFD.
    const message = readable ? (record.message as string).replace(WIRE_CONTROL_CHARACTERS, '\uFFFD') : 'error without a readable message';
    if (isErrorCode(record.code)) return new KeynodeError(record.code, message, given);
    const code = typeof record.code === 'string' ? record.code.slice(0, 64) : String(typeof record.code);
    return new KeynodeError('ERR_INTERNAL', message, { ...given, code });
  }
}
Object.defineProperty(KeynodeError.prototype, KEYNODE_ERROR, { value: true });

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
