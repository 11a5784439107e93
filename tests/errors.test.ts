import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../src/cli/exitCodes.js';
import { ERROR_CODES, KeynodeError, isErrorCode } from '../src/errors.js';

describe('KeynodeError across a boundary', () => {
  it('keeps code, message and data through toJSON → JSON → fromJSON', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ERROR_CODES),
        fc.string({ maxLength: 200 }),
        fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue()),
        (code, message, data) => {
          const error = new KeynodeError(code, message, data);
          const back = KeynodeError.fromJSON(JSON.parse(JSON.stringify(error)));
          expect(back).toBeInstanceOf(KeynodeError);
          expect(back.toJSON()).toEqual(JSON.parse(JSON.stringify(error.toJSON())));
        },
      ),
    );
  });

  it('turns an unknown code into ERR_INTERNAL, keeping the message and the code it got', () => {
    const error = KeynodeError.fromJSON({ code: 'ERR_FROM_THE_FUTURE', message: 'a newer agent said so', data: { vault: 'v' } });
    expect(error.code).toBe('ERR_INTERNAL');
    expect(error.message).toBe('a newer agent said so');
    expect(error.data).toEqual({ vault: 'v', code: 'ERR_FROM_THE_FUTURE' });
  });

  it('never crashes on whatever arrives', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const error = KeynodeError.fromJSON(value);
        expect(error).toBeInstanceOf(KeynodeError);
        expect(isErrorCode(error.code)).toBe(true);
        expect(typeof error.message).toBe('string');
      }),
    );
    for (const odd of [undefined, null, 7, 'ERR_IO', [], { code: 'toString' }, { code: '__proto__' }, { code: 'ERR_IO', message: 5, data: [1] }]) {
      expect(KeynodeError.fromJSON(odd)).toBeInstanceOf(KeynodeError);
    }
    expect(KeynodeError.fromJSON({ code: 'toString' }).code).toBe('ERR_INTERNAL');
  });

  it('keeps a message from the wire on one line, with nothing a terminal would act on', () => {
    const error = KeynodeError.fromJSON({ code: 'ERR_IO', message: 'a\nb\u001b[2Jc\u2028d\u0085e' });
    expect(error.message).toBe('a\uFFFDb\uFFFD[2Jc\uFFFDd\uFFFDe');
    expect(KeynodeError.fromJSON({ code: 'ERR_IO', message: 'plain: ünïcode ✓' }).message).toBe('plain: ünïcode ✓');
  });

  it('sends no stack and no cause', () => {
    const error = new KeynodeError('ERR_IO', 'disk', {}, { cause: new Error('secret detail') });
    expect(JSON.stringify(error)).toBe('{"code":"ERR_IO","message":"disk"}');
  });

  it('has an exit status (in the CLI) for every code', () => {
    for (const code of ERROR_CODES) expect(Number.isInteger(EXIT_CODES[code]), code).toBe(true);
    expect(Object.keys(EXIT_CODES).sort()).toEqual([...ERROR_CODES].sort());
  });
});
