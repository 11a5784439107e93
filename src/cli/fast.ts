import { KeynodeError, isKeynodeError } from '../errors.js';
import { resolveNodePath } from '../node/nodePath.js';
import { parseSecretRef } from '../vaults/paths.js';
import { socketPath } from '../agent/paths.js';
import { AgentConnection } from '../client/AgentConnection.js';
import { readSession, writeSession } from '../client/sessionFile.js';
import { printSaved, printSecretValue } from './format.js';
import { reportError } from './output.js';
import { readValueFromStdin } from './stdin.js';

/**
 * The hot commands (`secrets get`, `secrets set` from stdin) through a running agent with a
 * live session, without loading the full command tree (commander and every command module
 * cost ~35 ms of a ~75 ms start). Returns the exit code, or undefined to hand the invocation to
 * the full CLI: any other command or option, no agent, no session, or a session the agent
 * refuses (the full CLI re-authenticates). Output and errors are the full commands' own.
 */
interface Parsed {
  command: 'get' | 'set';
  ref: string;
  nodePath?: string;
  json: boolean;
  version?: string;
  message?: string;
}

function parse(args: string[]): Parsed | undefined {
  if (args[0] !== 'secrets' || (args[1] !== 'get' && args[1] !== 'set')) return undefined;
  const parsed: Partial<Parsed> = { command: args[1], json: false };
  for (let i = 2; i < args.length; i++) {
    const arg = args[i]!;
    const value = args[i + 1];
    if (arg === '--json') {
      parsed.json = true;
    } else if (arg === '--node-path' && value !== undefined) {
      parsed.nodePath = value;
      i++;
    } else if (arg === '--version' && parsed.command === 'get' && value !== undefined) {
      parsed.version = value;
      i++;
    } else if ((arg === '-m' || arg === '--message') && parsed.command === 'set' && value !== undefined) {
      parsed.message = value;
      i++;
    } else if (!arg.startsWith('-') && parsed.ref === undefined) {
      parsed.ref = arg;
    } else {
      return undefined;
    }
  }
  return parsed.ref === undefined ? undefined : (parsed as Parsed);
}

export async function tryFastPath(argv: string[]): Promise<number | undefined> {
  const parsed = parse(argv.slice(2));
  if (!parsed || (parsed.command === 'set' && process.stdin.isTTY)) return undefined;
  const nodePath = resolveNodePath(parsed.nodePath);
  let session;
  try {
    session = readSession(nodePath);
  } catch {
    return undefined;
  }
  if (!session || session.expiresAt <= Date.now() || Date.now() > session.issuedAt + (session.expiresAt - session.issuedAt) / 2) return undefined;
  let ref;
  try {
    ref = parseSecretRef(parsed.ref);
  } catch {
    return undefined; // the full CLI reports it
  }
  const connection = await AgentConnection.connect(socketPath(nodePath));
  if (!connection) return undefined;
  try {
    if (parsed.command === 'get') {
      const result = (await connection.request('secrets.get', { vault: ref.vault, path: ref.path, version: parsed.version }, session.token)) as { value: string };
      printSecretValue(parsed, { ...ref, version: parsed.version }, Buffer.from(result.value, 'base64'));
    } else {
      const value = await readValueFromStdin();
      const params = { vault: ref.vault, path: ref.path, value: value.toString('base64'), message: parsed.message };
      type Written = { commit: string; changed: boolean };
      let result: Written;
      try {
        result = (await connection.request('secrets.set', params, session.token)) as Written;
      } catch (error) {
        // stdin is consumed, so this path signs in again itself when the environment allows it.
        const password = process.env.KEYNODE_PASSWORD;
        if (!password || !(isKeynodeError(error, 'ERR_UNAUTHENTICATED') || isKeynodeError(error, 'ERR_AGENT_LOCKED'))) throw error;
        const fresh = await connection.unlock(Buffer.from(password, 'utf8')); // as the full CLI sends it: bytes
        writeSession(nodePath, fresh);
        result = (await connection.request('secrets.set', params, fresh.token)) as Written;
      }
      printSaved(parsed, ref, value.length, result);
    }
    return 0;
  } catch (error) {
    if (isKeynodeError(error, 'ERR_UNAUTHENTICATED') || isKeynodeError(error, 'ERR_AGENT_LOCKED') || isKeynodeError(error, 'ERR_AGENT_NOT_RUNNING')) {
      if (parsed.command === 'set') return reportError(new KeynodeError(error.code, error.message), parsed.json); // stdin is consumed
      return undefined;
    }
    return reportError(error, parsed.json);
  } finally {
    connection.close();
  }
}
