import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EnvCollector, ENV_NAME_PATTERN, envNameFor } from '../../src/formats/envNames.js';
import { isKeynodeError } from '../../src/errors.js';

describe('environment variable names', () => {
  it.each([
    ['db/password', 'DB_PASSWORD'],
    ['api-key', 'API_KEY'],
    ['Stripe.Secret', 'STRIPE_SECRET'],
    ['2fa/seed', '_2FA_SEED'],
  ])('%s -> %s', (path, name) => expect(envNameFor(path)).toBe(name));

  it('always yields a valid name for any path (property)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9_.\-/]{1,30}$/), (path) => {
        expect(envNameFor(path)).toMatch(ENV_NAME_PATTERN);
      }),
    );
  });

  it('refuses two secrets under one name, NUL bytes and binary values', () => {
    const env = new EnvCollector();
    env.add('DB_PASSWORD', 'v:db/password', Buffer.from('x'));
    env.add('DB_PASSWORD', 'v:db/password', Buffer.from('x')); // the same secret twice is fine
    const collision = (() => {
      try {
        env.add('DB_PASSWORD', 'v:db-password', Buffer.from('y'));
      } catch (error) {
        return error;
      }
    })();
    expect(isKeynodeError(collision, 'ERR_ENV_NAME')).toBe(true);
    expect(() => env.add('NUL', 'v:n', Buffer.from([97, 0, 98]))).toThrow(/NUL/);
    expect(() => env.add('BIN', 'v:b', Buffer.from([0xff, 0xfe]))).toThrow(/binary/);
    expect(() => env.add('1BAD', 'v:x', Buffer.from('x'))).toThrow(/not a valid/);
    expect(env.toObject()).toEqual({ DB_PASSWORD: 'x' });
  });
});
