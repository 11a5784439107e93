import { socketPath } from '../ipc/paths.js';
import { AgentClient, type ClientOptions, type KeynodeClient } from './AgentClient.js';
import { AgentConnection } from './AgentConnection.js';
import { LocalClient } from './LocalClient.js';

export type { ClientOptions, KeynodeClient } from './AgentClient.js';

/**
 * The one way the CLI reaches a node: through its running agent, or (when none runs) by
 * opening the node in this process. Both run the same API handlers (api/handlers.ts), so every
 * command gives the same output and the same errors either way.
 */
export async function connectClient(options: ClientOptions): Promise<KeynodeClient> {
  const connection = await connectAgent(options.nodePath);
  return connection ? new AgentClient(connection, options) : new LocalClient(options);
}

/** The agent's connection if one answers for this node, else null. Throws for a socket that is not ours. */
export async function connectAgent(nodePath: string): Promise<AgentConnection | null> {
  return AgentConnection.connect(socketPath(nodePath));
}
