import { KeynodeError, isKeynodeError } from '../errors.js';
import { resolveNodePath } from '../node/nodePath.js';
import { parseSecretRef } from '../vaults/paths.js';
import { socketPath } from '../ipc/paths.js';
import { AgentClient } from '../client/AgentClient.js';
import { AgentConnection } from '../client/AgentConnection.js';
import { readPassword } from './credentials.js';
import { printSaved, printSecretValue } from './format.js';
import { reportError } from './output.js';
import { setValue, stdinValue } from './values.js';

/**
 * The hot commands (`secrets get`, `secrets set` from stdin) through a running agent, without
 * loading the full command tree (commander and every command module cost ~35 ms of a ~75 ms
 * start). The client is the full CLI's (client/AgentClient.ts), so sessions are read, refreshed
 * and renewed the same way. Returns the exit code, or undefined to hand the invocation to the
 * full CLI: any other command or option, no agent, or (for `get`) no session to be had without
 * asking. Output and errors are the full commands' own. Keep its imports light: everything it
 * imports is bundled into dist/cli/keynode.cjs (tests/e2e/agentFastBundle.test.ts checks).
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
  let ref;
  try {
    ref = parseSecretRef(parsed.ref);
  } catch {
    return undefined; // the full CLI reports it
  }
  const nodePath = resolveNodePath(parsed.nodePath);
  let connection;
  try {
    connection = await AgentConnection.connect(socketPath(nodePath));
  } catch {
    return undefined; // a socket that is not ours: the full CLI reports it
  }
  if (!connection) return undefined;
  // The full CLI's own client: same session file, refresh, re-authentication and result types.
  const client = new AgentClient(connection, { nodePath, password: () => readPassword({}) });
  try {
    if (parsed.command === 'get') {
      let value: string;
      try {
        ({ value } = await client.call('secrets.get', { vault: ref.vault, path: ref.path, version: parsed.version }));
      } catch (error) {
        if (isKeynodeError(error, 'ERR_NOT_SUPPORTED')) return undefined; // too large to answer whole: the full CLI streams it
        throw error;
      }
      printSecretValue(parsed, { ...ref, version: parsed.version }, Buffer.from(value, 'base64'));
    } else {
      const { bytes, result } = await setValue(client, { ...ref, message: parsed.message }, stdinValue());
      printSaved(parsed, ref, bytes, result);
    }
    return 0;
  } catch (error) {
    if (isKeynodeError(error, 'ERR_UNAUTHENTICATED') || isKeynodeError(error, 'ERR_AGENT_LOCKED') || isKeynodeError(error, 'ERR_AGENT_NOT_RUNNING')) {
      if (parsed.command === 'set') return reportError(new KeynodeError(error.code, error.message), parsed.json); // stdin is consumed
      return undefined;
    }
    return reportError(error, parsed.json);
  } finally {
    client.close();
  }
}
