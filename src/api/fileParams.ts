import type { MethodName } from './contract.js';

/**
 * Params that name a file (schema `absolutePath`). The agent runs in its own working
 * directory, so clients make these absolute before sending and the agent refuses relative
 * ones. Kept apart from the schemas so the bundled fast path does not load them;
 * tests/api/schema.test.ts checks that it lists exactly the schemas' absolutePath fields.
 */
export const FILE_PARAMS: Readonly<Partial<Record<MethodName, readonly string[]>>> = {
  'vaults.exportBundle': ['file'],
};
