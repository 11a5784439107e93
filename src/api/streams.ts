import type { CommitInfo, SecretEntry } from '../vaults/Vault.js';
import type { ParamsOf, ResultOf } from './contract.js';

/**
 * Owner methods whose result is a list of any length: the agent streams the items in frames
 * (docs/api.md, "Streamed replies") and a client may take them one by one (`stream`) or whole
 * (`call`, which rebuilds the method's result with STREAM_RESULTS). No runtime import: the
 * bundled fast path carries this table.
 */
export interface StreamItems {
  'secrets.ls': SecretEntry;
  'vaults.log': CommitInfo;
}

export type StreamMethod = keyof StreamItems;
export type StreamItem<M extends StreamMethod> = StreamItems[M];

/** A streamed method's whole result, from its params and all its items. */
export const STREAM_RESULTS: { [M in StreamMethod]: (params: ParamsOf<M>, items: Array<StreamItems[M]>) => ResultOf<M> } = {
  'secrets.ls': (_params, entries) => ({ entries }),
  'vaults.log': (params, commits) => ({ vault: params.name, commits }),
};

/** The field of the whole result that holds the items (what an agent from before streams sends). */
export const STREAM_FIELDS: { [M in StreamMethod]: keyof ResultOf<M> } = {
  'secrets.ls': 'entries',
  'vaults.log': 'commits',
};

export function isStreamMethod(name: string): name is StreamMethod {
  return Object.prototype.hasOwnProperty.call(STREAM_RESULTS, name);
}
