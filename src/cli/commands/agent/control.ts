import fs from 'node:fs';
import type { Command } from 'commander';
import { KeynodeError } from '../../../errors.js';
import type { AgentConnection } from '../../../client/AgentConnection.js';
import { globalOptions, nodePathOf, readPassword, type GlobalOptions } from '../../context.js';
import { emit } from '../../output.js';

async function withAgent<T>(global: GlobalOptions, work: (connection: AgentConnection, nodePath: string) => Promise<T>): Promise<T> {
  const { connectAgent } = await import('../../../client/KeynodeClient.js');
  const nodePath = nodePathOf(global);
  const connection = await connectAgent(nodePath);
  if (!connection)
    throw new KeynodeError('ERR_AGENT_NOT_RUNNING', `no agent is running for ${nodePath} (start one: keynode agent start --background)`, { nodePath });
  try {
    return await work(connection, nodePath);
  } finally {
    connection.close();
  }
}

interface Status {
  pid: number;
  locked: boolean;
  nodeId: string | null;
  sessions: number;
  socket: string;
  startedAt: string;
  idleTimeoutMs: number;
}

export function register(agent: Command): void {
  agent
    .command('status')
    .description('is an agent running for this node, and is it locked (exit 12 when none runs)')
    .action(async (_options: unknown, command: Command) => {
      const global = globalOptions(command);
      const status = (await withAgent(global, (connection) => connection.request('agent.status', {}))) as Status;
      emit(global, { running: true, ...status }, () =>
        [
          `agent      running (pid ${status.pid}) since ${status.startedAt}`,
          `state      ${status.locked ? 'locked' : 'unlocked'}`,
          `node id    ${status.nodeId ?? '-'}`,
          `sessions   ${status.sessions}`,
          `idle lock  ${status.idleTimeoutMs > 0 ? `${status.idleTimeoutMs / 1000} s` : 'off'}`,
          `socket     ${status.socket}`,
        ].join('\n'),
      );
    });

  agent
    .command('stop')
    .description('stop the agent (in-flight writes finish first)')
    .action(async (_options: unknown, command: Command) => {
      const global = globalOptions(command);
      const { socket, pid } = await withAgent(global, async (connection) => {
        const status = (await connection.request('agent.status', {})) as Status;
        await connection.request('agent.stop', {});
        return status;
      });
      // Stopped means gone: the socket removed and the process exited (it finishes in-flight writes first).
      const running = () => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      for (let waited = 0; (fs.existsSync(socket) || running()) && waited < 10_000; waited += 25) await new Promise((r) => setTimeout(r, 25));
      const { removeSession } = await import('../../../client/sessionFile.js');
      removeSession(nodePathOf(global));
      emit(global, { stopped: true, pid }, `keynode agent (pid ${pid}) stopped`);
    });

  agent
    .command('lock')
    .description('revoke every session and drop the keys from memory (the agent keeps running)')
    .action(async (_options: unknown, command: Command) => {
      const global = globalOptions(command);
      await withAgent(global, (connection) => connection.request('agent.lock', {}));
      const { removeSession } = await import('../../../client/sessionFile.js');
      removeSession(nodePathOf(global));
      emit(global, { locked: true }, 'keynode agent locked');
    });

  agent
    .command('unlock')
    .description('unlock the agent (or start a new session) with the node password')
    .action(async (_options: unknown, command: Command) => {
      const global = globalOptions(command);
      const session = await withAgent(global, async (connection, nodePath) => {
        const result = await connection.unlock(await readPassword(global));
        const { writeSession } = await import('../../../client/sessionFile.js');
        writeSession(nodePath, result);
        return result;
      });
      emit(
        global,
        { unlocked: true, expiresAt: new Date(session.expiresAt).toISOString() },
        `keynode agent unlocked; session valid until ${new Date(session.expiresAt).toISOString()} (refreshed while in use)`,
      );
    });
}
