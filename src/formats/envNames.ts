import { KeynodeError } from '../errors.js';

/**
 * Environment variable names for secrets (documented in README, "secrets env"):
 * a secret's path relative to the reference given (its base name when the reference is the
 * secret itself), upper-cased, each character outside A-Z and 0-9 replaced by '_', prefixed
 * with '_' if it would start with a digit. `db/password` -> DB_PASSWORD, `api-key` -> API_KEY.
 */
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function envNameFor(relativePath: string): string {
  const name = relativePath.toUpperCase().replace(/[^A-Z0-9]/g, '_');
  return /^[0-9]/.test(name) ? `_${name}` : name;
}

export function validateEnvName(name: string): string {
  if (!ENV_NAME_PATTERN.test(name)) {
    throw new KeynodeError('ERR_ENV_NAME', `"${name}" is not a valid environment variable name (letters, digits and _, not starting with a digit)`, { name });
  }
  return name;
}

/**
 * Variables that change how programs run rather than feed them data: the dynamic loader, libc,
 * shells, language runtimes, git, pagers/editors, TLS trust and proxies, and keynode itself.
 * Sources: sudo's `initial_badenv_table` (plugins/sudoers/env.c) and glibc's `UNSECURE_ENVVARS`,
 * plus the runtimes those predate (Node, Java, git config, npm). A name *derived* from a secret's
 * path may not be one of these (an imported `.env` or store could otherwise plant `LD_PRELOAD`);
 * the user can still set one on purpose with `--var NAME=VAULT:PATH`.
 */
const PROGRAM_CONTROL_NAMES = new Set([
  // shells
  'PATH',
  'IFS',
  'CDPATH',
  'ENV',
  'BASH_ENV',
  'SHELLOPTS',
  'BASHOPTS',
  'PS1',
  'PS2',
  'PS3',
  'PS4',
  'PROMPT_COMMAND',
  'GLOBIGNORE',
  'FPATH',
  'ZDOTDIR',
  'NULLCMD',
  'READNULLCMD',
  'TMPPREFIX',
  'INPUTRC',
  'HOME',
  'SHELL',
  'BASH_LOADABLES_PATH',
  // libc and the terminal database
  'GCONV_PATH',
  'GLIBC_TUNABLES',
  'GETCONF_DIR',
  'HOSTALIASES',
  'LOCALDOMAIN',
  'RES_OPTIONS',
  'RESOLV_HOST_CONF',
  'LOCPATH',
  'NLSPATH',
  'PATH_LOCALE',
  'MALLOC_TRACE',
  'NIS_PATH',
  'TZDIR',
  'TMPDIR',
  'LIBPATH',
  'SHLIB_PATH',
  'TERMINFO',
  'TERMINFO_DIRS',
  'TERMPATH',
  'TERMCAP',
  // language runtimes
  'NODE_OPTIONS',
  'NODE_PATH',
  'NODE_EXTRA_CA_CERTS',
  'NODE_TLS_REJECT_UNAUTHORIZED',
  'NODE_REPL_EXTERNAL_MODULE',
  'RUBYOPT',
  'RUBYLIB',
  'GEM_HOME',
  'GEM_PATH',
  'BUNDLE_GEMFILE',
  'JAVA_TOOL_OPTIONS',
  '_JAVA_OPTIONS',
  'JDK_JAVA_OPTIONS',
  'CLASSPATH',
  'PHPRC',
  'PHP_INI_SCAN_DIR',
  'LUA_INIT',
  'LUA_PATH',
  'LUA_CPATH',
  'TCLLIBPATH',
  'R_PROFILE',
  'R_PROFILE_USER',
  'GOFLAGS',
  'GOROOT',
  'GOENV',
  'GOTOOLCHAIN',
  'GOPROXY',
  // git: programs it runs and where it reads configuration
  'GIT_SSH',
  'GIT_SSH_COMMAND',
  'GIT_EXEC_PATH',
  'GIT_EDITOR',
  'GIT_SEQUENCE_EDITOR',
  'GIT_PAGER',
  'GIT_ASKPASS',
  'GIT_PROXY_COMMAND',
  'GIT_EXTERNAL_DIFF',
  'GIT_DIR',
  'GIT_WORK_TREE',
  'GIT_TEMPLATE_DIR',
  'GIT_CONFIG',
  'GIT_CONFIG_GLOBAL',
  'GIT_CONFIG_SYSTEM',
  'GIT_CONFIG_PARAMETERS',
  'GIT_CONFIG_COUNT',
  // other programs that programs start
  'EDITOR',
  'VISUAL',
  'PAGER',
  'MANPAGER',
  'BROWSER',
  'LESSOPEN',
  'LESSCLOSE',
  'SSH_ASKPASS',
  'SUDO_ASKPASS',
  // whom TLS trusts, where traffic goes
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'OPENSSL_CONF',
  'OPENSSL_ENGINES',
  'OPENSSL_MODULES',
  'SSLKEYLOGFILE',
  'XDG_CONFIG_HOME',
  'CURL_CA_BUNDLE',
  'REQUESTS_CA_BUNDLE',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'ALL_PROXY',
  'NO_PROXY',
]);
const PROGRAM_CONTROL_PREFIXES = ['LD_', 'DYLD_', '_RLD', 'LDR_', 'BASH_FUNC_', 'PYTHON', 'PERL', 'GIT_CONFIG_', 'NPM_CONFIG_', 'KRB5_', 'KEYNODE_'];

/** True when setting `name` changes how programs run (see PROGRAM_CONTROL_NAMES). */
export function changesHowProgramsRun(name: string): boolean {
  const upper = name.toUpperCase();
  return PROGRAM_CONTROL_NAMES.has(upper) || PROGRAM_CONTROL_PREFIXES.some((prefix) => upper.startsWith(prefix));
}

/** A name derived from `source` (not chosen by the user): refuse one that changes how programs run. */
export function checkDerivedEnvName(name: string, source: string): string {
  if (changesHowProgramsRun(name)) {
    throw new KeynodeError('ERR_ENV_NAME', `${source} maps to ${name}, which changes how programs run; set it on purpose with --var ${name}=${source}`, {
      name,
    });
  }
  return name;
}

export interface EnvSource {
  /** Where the value came from, for collision messages: "vault:path". */
  source: string;
  value: Buffer;
}

/**
 * Collect name -> value, refusing two different secrets under one name and values that
 * cannot live in an environment (NUL bytes, invalid UTF-8).
 */
export class EnvCollector {
  private readonly vars = new Map<string, EnvSource>();

  add(name: string, source: string, value: Buffer): void {
    validateEnvName(name);
    const existing = this.vars.get(name);
    if (existing && existing.source !== source) {
      throw new KeynodeError('ERR_ENV_NAME', `${existing.source} and ${source} both map to ${name}; name one with --var NAME=VAULT:PATH`, { name });
    }
    if (value.includes(0)) throw new KeynodeError('ERR_ENV_NAME', `${source} contains a NUL byte and cannot be an environment variable`, { name });
    if (!Buffer.from(value.toString('utf8'), 'utf8').equals(value)) {
      throw new KeynodeError('ERR_ENV_NAME', `${source} is binary (not UTF-8) and cannot be an environment variable`, { name });
    }
    this.vars.set(name, { source, value });
  }

  toObject(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of [...this.vars.keys()].sort()) out[name] = this.vars.get(name)!.value.toString('utf8');
    return out;
  }
}
