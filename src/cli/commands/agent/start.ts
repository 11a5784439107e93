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

/** Whether this process may write a core dump (soft RLIMIT_CORE above 0). */
function coreDumpsAllowed(): boolean {
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max core file size'));
    return line !== undefined && !/^Max core file size\s+0\s/.test(line);
  } catch {
    return false; // not Linux: nothing to check here
  }
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
 * A foreground start whose process could dump core: run the agent as a child under
 * `ulimit -c 0` on the same terminal, hand it the password on a pipe, forward signals, and
 * exit with its status.
 */
function runAgentWithoutCoreDumps(global: GlobalOptions, options: StartOptions, password: string): Promise<number> {
  const child = spawn('/bin/sh', agentCommand(global, options, '--foreground-child'), { stdio: ['pipe', 'inherit', 'inherit'], env: childEnv() });
  child.stdin.end(password + '\n');
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, forward);
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + os.constants.signals[signal] : 1))));
}


async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\n$/, '');
}

/** Run the agent in this process until SIGTERM/SIGINT or `agent stop`. */
async function runAgent(global: GlobalOptions, options: StartOptions, password: string, ready: (pid: number, nodeId: string | null, socket: string) => void): Promise<void> {
  const { Agent } = await import('../../../agent/Agent.js');
  const { writeSession } = await import('../../../client/sessionFile.js');
  const nodePath = nodePathOf(global);
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} keynode-agent ${line}\n`);
  const { agent, session } = await Agent.start({
    nodePath,
    password,
    idleTimeoutMs: options.idleTimeout ? parseDuration(options.idleTimeout, '--idle-timeout') : 0,
    sessionTtlMs: options.sessionTtl ? parseDuration(options.sessionTtl, '--session-ttl') : undefined,
    lockWaitMs: lockWaitOf(global),
    log,
  });
  writeSession(nodePath, session);
  const stop = () => void agent.stop();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => {});
  const status = agent.status();
  ready(status.pid, status.nodeId, status.socket);
  await agent.stopped;
}

/** Start a detached agent, hand it the password on a pipe, return once it is serving. */
async function startInBackground(global: GlobalOptions, options: StartOptions, password: string): Promise<{ pid: number; nodeId: string | null; socket: string; log: string }> {
  const { agentLogFile } = await import('../../../agent/paths.js');
  const logPath = agentLogFile(nodePathOf(global));
  const logFd = fs.openSync(logPath, 'a', 0o600);
  // Through sh for `ulimit -c 0`: the agent holds keys for hours and must never dump core.
  const child = spawn('/bin/sh', agentCommand({ ...global, json: false }, options, '--child'), { detached: true, stdio: ['pipe', 'pipe', logFd], env: childEnv() });
  fs.closeSync(logFd);
  child.stdin!.end(password + '\n');
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
      const global = globalOptions(command);
      if (options.idleTimeout) parseDuration(options.idleTimeout, '--idle-timeout');
      if (options.sessionTtl) parseDuration(options.sessionTtl, '--session-ttl');
      if (options.child) {
        // The detached agent: password from the pipe, readiness (or failure) as one line on stdout.
        const password = await readStdinLine();
        try {
          await runAgent(global, options, password, (pid, nodeId, socket) => {
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
        await runAgent(global, options, await readStdinLine(), ready);
        return;
      }
      const password = await readPassword(global);
      if (options.background) {
        const started = await startInBackground(global, options, password);
        emit(global, { running: true, ...started }, `keynode agent running in the background (pid ${started.pid}); log: ${started.log}`);
        return;
      }
      if (coreDumpsAllowed()) {
        process.exitCode = await runAgentWithoutCoreDumps(global, options, password);
        return;
      }
      await runAgent(global, options, password, ready);
    });
}
