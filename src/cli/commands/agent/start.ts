import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Option, type Command } from 'commander';
import { KeynodeError, type ErrorCode } from '../../../errors.js';
import { childEnv, globalOptions, lockWaitOf, nodePathOf, readPassword, type GlobalOptions } from '../../context.js';
import { parseDuration } from '../../duration.js';
import { emit } from '../../output.js';

interface StartOptions {
  background?: boolean;
  idleTimeout?: string;
  sessionTtl?: string;
  /** The detached agent of --background (readiness handshake on stdout). */
  child?: boolean;
  /** The agent of a foreground start, run under `ulimit -c 0` (prints like a foreground start). */
  foregroundChild?: boolean;
}

/** The agent's own command line (password never in it), run through sh for `ulimit -c 0`. */
function agentCommand(global: GlobalOptions, options: StartOptions, mode: '--child' | '--foreground-child'): string[] {
  const main = fileURLToPath(new URL('../../keynode.cjs', import.meta.url));
  const args = [main, '--node-path', nodePathOf(global), 'agent', 'start', mode];
  if (options.idleTimeout) args.push('--idle-timeout', options.idleTimeout);
  if (options.sessionTtl) args.push('--session-ttl', options.sessionTtl);
  if (global.lockTimeout) args.push('--lock-timeout', global.lockTimeout);
  if (global.json) args.push('--json');
  return ['-c', 'ulimit -c 0; exec "$0" "$@"', process.execPath, ...args];
}

/**
 * A foreground start: run the agent as a child under `ulimit -c 0` on the same terminal, hand it
 * the password on a pipe, forward signals, and exit with its status. Always a child, so the
 * agent's process never held the password as a string nor in its environment
 * (KEYNODE_PASSWORD), and could never dump core.
 */
function runAgentInForeground(global: GlobalOptions, options: StartOptions, password: Buffer): Promise<number> {
  const child = spawn('/bin/sh', agentCommand(global, options, '--foreground-child'), { stdio: ['pipe', 'inherit', 'inherit'], env: childEnv() });
  handOver(child.stdin, password);
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, forward);
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + os.constants.signals[signal] : 1))));
}

/** Write the password and a newline to the agent's pipe, then zero every copy we made. */
function handOver(pipe: NodeJS.WritableStream, password: Buffer): void {
  const line = Buffer.concat([password, Buffer.from('\n')]);
  password.fill(0);
  pipe.end(line, () => line.fill(0));
}

/** The password from the starter's pipe, as bytes (zeroed by whoever uses them), less its newline. */
async function readPasswordLine(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const all = Buffer.concat(chunks);
  for (const chunk of chunks) chunk.fill(0);
  const end = all.at(-1) === 0x0a ? all.length - 1 : all.length;
  const password = Buffer.from(all.subarray(0, end));
  all.fill(0);
  return password;
}

/** Run the agent in this process until SIGTERM/SIGINT or `agent stop`. */
async function runAgent(
  global: GlobalOptions,
  options: StartOptions,
  password: Buffer,
  collectGarbage: () => void,
  ready: (pid: number, nodeId: string | null, socket: string) => void,
): Promise<void> {
  const { Agent } = await import('../../../agent/Agent.js');
  const { writeSession } = await import('../../../client/sessionFile.js');
  const { runtimeDir } = await import('../../../ipc/paths.js');
  const nodePath = nodePathOf(global);
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} keynode-agent ${line}\n`);
  let started;
  try {
    runtimeDir(); // where the session goes: refused before anything is unlocked if it is not private
    started = await Agent.start({
      nodePath,
      password,
      idleTimeoutMs: options.idleTimeout ? parseDuration(options.idleTimeout, '--idle-timeout') : 0,
      sessionTtlMs: options.sessionTtl ? parseDuration(options.sessionTtl, '--session-ttl') : undefined,
      lockWaitMs: lockWaitOf(global),
      log,
      collectGarbage,
    });
  } finally {
    password.fill(0); // the agent keeps no password (unlocking again takes one from a client)
  }
  const { agent, session } = started;
  try {
    writeSession(nodePath, session);
  } catch (error) {
    await agent.stop(); // an agent nobody can sign in to must not keep running
    throw error;
  }
  const stop = () => void agent.stop();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => {});
  const status = agent.status();
  ready(status.pid, status.nodeId, status.socket);
  await agent.stopped;
}

/** Start a detached agent, hand it the password on a pipe, return once it is serving. */
async function startInBackground(
  global: GlobalOptions,
  options: StartOptions,
  password: Buffer,
): Promise<{ pid: number; nodeId: string | null; socket: string; log: string }> {
  const { agentLogFile } = await import('../../../ipc/paths.js');
  const logPath = agentLogFile(nodePathOf(global));
  const logFd = fs.openSync(logPath, 'a', 0o600);
  // Through sh for `ulimit -c 0`: the agent holds keys for hours and must never dump core.
  const child = spawn('/bin/sh', agentCommand({ ...global, json: false }, options, '--child'), {
    detached: true,
    stdio: ['pipe', 'pipe', logFd],
    env: childEnv(),
  });
  fs.closeSync(logFd);
  handOver(child.stdin!, password);
  const line = await new Promise<string>((resolve) => {
    let text = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) resolve(text.slice(0, text.indexOf('\n')));
    });
    child.once('exit', () => resolve(text || 'ERROR {"code":"ERR_INTERNAL","message":"the agent exited before it was ready"}'));
  });
  child.stdout!.destroy();
  child.unref();
  if (line.startsWith('READY ')) return { ...(JSON.parse(line.slice(6)) as { pid: number; nodeId: string | null; socket: string }), log: logPath };
  const failure = JSON.parse(line.replace(/^ERROR /, '')) as { code: ErrorCode; message: string };
  throw new KeynodeError(failure.code, failure.message);
}

export function register(agent: Command): void {
  agent
    .command('start')
    .description('unlock the node once and serve it to the CLI (foreground; --background detaches)')
    .option('--background', 'detach, and return once the agent is ready (log in the runtime directory)')
    .option('--idle-timeout <duration>', 'lock after this long without a request (30s, 15m, 1h; default 0 = never)')
    .option('--session-ttl <duration>', 'lifetime of a session token, refreshed while in use (default 1h)')
    .addOption(new Option('--child').hideHelp())
    .addOption(new Option('--foreground-child').hideHelp())
    .action(async (options: StartOptions, command: Command) => {
      const { hardenAgentMemory } = await import('../../../agent/memory.js');
      const collectGarbage = hardenAgentMemory(); // before the password is read: see agent/memory.ts
      const global = globalOptions(command);
      if (options.idleTimeout) parseDuration(options.idleTimeout, '--idle-timeout');
      if (options.sessionTtl) parseDuration(options.sessionTtl, '--session-ttl');
      if (options.child) {
        // The detached agent: password from the pipe, readiness (or failure) as one line on stdout.
        const password = await readPasswordLine();
        try {
          await runAgent(global, options, password, collectGarbage, (pid, nodeId, socket) => {
            process.stdout.write(`READY ${JSON.stringify({ pid, nodeId, socket })}\n`);
          });
        } catch (error) {
          const code = error instanceof KeynodeError ? error.code : 'ERR_INTERNAL';
          const message = error instanceof Error ? error.message : String(error);
          process.stdout.write(`ERROR ${JSON.stringify({ code, message })}\n`);
          process.exitCode = 1;
        }
        return;
      }
      const ready = (pid: number, nodeId: string | null, socket: string) =>
        emit(global, { running: true, pid, nodeId, socket }, `keynode agent running (pid ${pid}) for node ${nodeId ?? '?'} on ${socket}; Ctrl-C stops it`);
      if (options.foregroundChild) {
        await runAgent(global, options, await readPasswordLine(), collectGarbage, ready);
        return;
      }
      const password = await readPassword(global);
      if (options.background) {
        const started = await startInBackground(global, options, password);
        emit(global, { running: true, ...started }, `keynode agent running in the background (pid ${started.pid}); log: ${started.log}`);
        return;
      }
      const running = runAgentInForeground(global, options, password);
      collectGarbage(); // this process waits as long as the agent runs: drop its copies of the password
      process.exitCode = await running;
    });
}
