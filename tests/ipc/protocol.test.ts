import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeynodeError } from '../../src/errors.js';
import { encodeRequest, errorReply, parseReply } from '../../src/ipc/protocol.js';

describe('agent wire protocol', () => {
  it('writes requests byte for byte as clients always have (the native client relies on it)', () => {
    expect(encodeRequest(7, 'secrets.get', JSON.stringify({ vault: 'prod', path: 'db/password' }), 'tok')).toBe(
      '{"v":1,"id":7,"method":"secrets.get","token":"tok","params":{"vault":"prod","path":"db/password"}}\n',
    );
    expect(encodeRequest(1, 'agent.status', '{}', undefined)).toBe('{"v":1,"id":1,"method":"agent.status","params":{}}\n');
  });

  it('writes an error reply with code and message, and data only when there is some', () => {
    expect(JSON.stringify(errorReply(3, new KeynodeError('ERR_SECRET_NOT_FOUND', 'no secret prod:nope')))).toBe(
      '{"v":1,"id":3,"error":{"code":"ERR_SECRET_NOT_FOUND","message":"no secret prod:nope"}}',
    );
    expect(JSON.stringify(errorReply(null, new KeynodeError('ERR_INVALID_REQUEST', 'bad', { field: 'params.x' })))).toBe(
      '{"v":1,"id":null,"error":{"code":"ERR_INVALID_REQUEST","message":"bad","data":{"field":"params.x"}}}',
    );
  });

  it('reads an error reply whole, and an unknown code as ERR_INTERNAL', () => {
    const known = parseReply(Buffer.from('{"v":1,"id":3,"error":{"code":"ERR_VAULT_NOT_FOUND","message":"no vault x","data":{"vault":"x"}}}'));
    expect('error' in known && known.error.toJSON()).toEqual({ code: 'ERR_VAULT_NOT_FOUND', message: 'no vault x', data: { vault: 'x' } });
    const unknown = parseReply(Buffer.from('{"v":1,"id":4,"error":{"code":"ERR_NEW","message":"m"}}'));
    expect('error' in unknown && unknown.error.code).toBe('ERR_INTERNAL');
  });

  it('turns any frame into a reply or a KeynodeError, never a crash', () => {
    const frames = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
      fc
        .record({ v: fc.jsonValue(), id: fc.jsonValue(), result: fc.jsonValue(), error: fc.jsonValue() }, { requiredKeys: [] })
        .map((v) => Buffer.from(JSON.stringify(v))),
    );
    fc.assert(
      fc.property(frames, (frame) => {
        try {
          const reply = parseReply(frame);
          if ('error' in reply) expect(reply.error).toBeInstanceOf(KeynodeError);
        } catch (error) {
          expect(error).toBeInstanceOf(KeynodeError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
