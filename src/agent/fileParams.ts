import type { MethodName } from './api.js';

/**
 * API params that name a file. The agent runs in its own working directory, so a relative path
 * would land somewhere the caller did not mean: clients make these absolute before sending
 * (client/KeynodeClient.ts) and the agent refuses relative ones (schema `absolutePath`).
 */
export const FILE_PARAMS: Partial<Record<MethodName, readonly string[]>> = {
  'vaults.exportBundle': ['file'],
};
