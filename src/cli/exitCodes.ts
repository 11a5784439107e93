import type { ErrorCode } from '../errors.js';

/**
 * The CLI's exit status for each error code: stable (scripts rely on them; docs/errors.md lists
 * them, the e2e tests check them). A process status is the CLI's concern, not the library's.
 */
export const EXIT_CODES: Readonly<Record<ErrorCode, number>> = {
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
};

/**
 * What to do next, for errors whose remedy is a keynode command. Appended by the CLI to the
 * library's message (which says what went wrong, not which command to type); a message that
 * already names a command is left as it is.
 */
const HINTS: Partial<Record<ErrorCode, string>> = {
  ERR_NODE_NOT_FOUND: 'run "keynode init" or pass --node-path',
  ERR_UNAUTHENTICATED: 'run "keynode agent unlock"',
  ERR_AGENT_LOCKED: 'run "keynode agent unlock"',
};

export function withHint(code: ErrorCode, message: string): string {
  const hint = HINTS[code];
  return hint && !message.includes('"keynode ') ? `${message}: ${hint}` : message;
}
