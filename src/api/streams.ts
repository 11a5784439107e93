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
  /** A piece of the value: bytes (a binary frame, or in process), or base64 (a JSON frame, for a request id that is not a u32). */
  'secrets.getStream': Uint8Array | string;
}

export type StreamMethod = keyof StreamItems;
export type StreamItem<M extends StreamMethod> = StreamItems[M];

/** A piece of a streamed value as bytes, whichever frame carried it. */
export function pieceBytes(piece: Uint8Array | string): Uint8Array {
  return typeof piece === 'string' ? Buffer.from(piece, 'base64') : piece;
}

/** A streamed method's whole result, from its params and all its items. */
export const STREAM_RESULTS: { [M in StreamMethod]: (params: ParamsOf<M>, items: Array<StreamItems[M]>) => ResultOf<M> } = {
  'secrets.ls': (_params, entries) => ({ entries }),
  'vaults.log': (params, commits) => ({ vault: params.name, commits }),
  'secrets.getStream': (_params, pieces) => ({ value: Buffer.concat(pieces.map(pieceBytes)).toString('base64') }),
};

/** The field of the whole result that holds the items (what an agent from before streams sends). */
export const STREAM_FIELDS: { [M in StreamMethod]: keyof ResultOf<M> } = {
  'secrets.ls': 'entries',
  'vaults.log': 'commits',
  'secrets.getStream': 'value',
};

export function isStreamMethod(name: string): name is StreamMethod {
  return Object.prototype.hasOwnProperty.call(STREAM_RESULTS, name);
}

/** Owner methods that take a streamed request body (the value's bytes) after their params. */
export type UploadMethod = 'secrets.setStream';

export function isUploadMethod(name: string): name is UploadMethod {
  return name === 'secrets.setStream';
}
