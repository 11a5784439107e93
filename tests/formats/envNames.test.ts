import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EnvCollector, ENV_NAME_PATTERN, changesHowProgramsRun, checkDerivedEnvName, envNameFor } from '../../src/formats/envNames.js';
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

  it.each([
    'LD_PRELOAD',
    'LD_LIBRARY_PATH',
    'DYLD_INSERT_LIBRARIES',
    'BASH_ENV',
    'ENV',
    'BASH_FUNC_X',
    'NODE_OPTIONS',
    'NODE_PATH',
    'PYTHONPATH',
    'PYTHONSTARTUP',
    'PERL5OPT',
    'PERL5LIB',
    'RUBYOPT',
    'GCONV_PATH',
    'PATH',
    'IFS',
    'PS4',
    'SHELLOPTS',
    'JAVA_TOOL_OPTIONS',
    'GIT_SSH_COMMAND',
    'GIT_CONFIG_KEY_0',
    'NPM_CONFIG_SCRIPT_SHELL',
    'KEYNODE_PATH',
    'HTTPS_PROXY',
    'OPENSSL_CONF',
    'SSLKEYLOGFILE',
    'XDG_CONFIG_HOME',
  ])('a name derived from a path may not be %s (it changes how programs run)', (name) => {
    expect(changesHowProgramsRun(name)).toBe(true);
    const error = (() => {
      try {
        checkDerivedEnvName(name, 'v:some/path');
      } catch (e) {
        return e;
      }
    })();
    expect(isKeynodeError(error, 'ERR_ENV_NAME')).toBe(true);
    expect((error as Error).message).toContain(`--var ${name}=v:some/path`);
  });

  it.each(['DB_PASSWORD', 'API_KEY', 'NODE_ENV', 'GIT_TOKEN', 'GITHUB_TOKEN', 'PATHNAME', 'USER', 'LANG', 'AWS_SECRET_ACCESS_KEY'])(
    '%s is an ordinary name',
    (name) => {
      expect(changesHowProgramsRun(name)).toBe(false);
      expect(checkDerivedEnvName(name, 'v:x')).toBe(name);
    },
  );
});
