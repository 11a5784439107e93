import type { Command } from 'commander';
import { KeynodeError } from '../../errors.js';
import { EXIT_CODES } from '../exitCodes.js';
import type { KeynodeNode } from '../../node/KeynodeNode.js';
import { globalOptions, lockWaitOf, nodePathOf, readPassword, withClient, type GlobalOptions } from '../context.js';
import { emit, note } from '../output.js';

type Report = Awaited<ReturnType<KeynodeNode['check']>>;

/**
 * Open the node in this process accepting a store that ends before its high-water mark (cut,
 * or an older copy put back): the owner's explicit word, after reading the error that sent them here.
 */
async function checkAcceptingOlderState(global: GlobalOptions): Promise<Report> {
  const nodePath = nodePathOf(global);
  const { connectAgent } = await import('../../client/KeynodeClient.js');
  const agent = await connectAgent(nodePath);
  if (agent) {
    agent.close();
    throw new KeynodeError('ERR_AGENT_RUNNING', 'an agent has this node open (so its store opened as it is); stop it first: keynode agent stop');
  }
  const { KeynodeNode } = await import('../../node/KeynodeNode.js');
  const password = await readPassword(global);
  let node: KeynodeNode;
  try {
    node = await KeynodeNode.open({ nodePath, password, lockWaitMs: lockWaitOf(global), acceptOlderState: true });
  } finally {
    password.fill(0);
  }
  try {
    return await node.check();
  } finally {
    node.close();
  }
}

/** Problems listed in the human output; --json lists them all. */
const MAX_PROBLEM_LINES = 50;

export function register(program: Command): void {
  program
    .command('check')
    .description('verify every record, object and ref of the node, like git fsck (exit 7 on damage)')
    .option('--accept-older-state', 'open a store that ends before its last acknowledged change (cut or restored from an older copy) and make that its state')
    .action(async (options: { acceptOlderState?: boolean }, command: Command) => {
      const global = globalOptions(command);
      const report = options.acceptOlderState ? await checkAcceptingOlderState(global) : await withClient(global, (client) => client.call('node.check', {}));
      const accepted = report.store.acceptedOlderState;
      if (accepted)
        note(
          global,
          `warning: accepted an older store state: it ends at change ${accepted.logSequence}; changes up to ${accepted.markSequence} had been written`,
        );
      if (report.store.tornTailBytes) {
        note(
          global,
          `note: ${report.store.tornTailBytes} bytes of an interrupted (never acknowledged) write follow the last whole change; the next write sets them aside`,
        );
      }
      const damaged = report.problems.filter((problem) => problem.damage).length;
      emit(global, report, () => {
        const { commits, trees, blobs } = report.objects;
        const lines = [
          `vaults   ${report.vaults}`,
          `objects  ${commits} commits, ${trees} trees, ${blobs} blobs`,
          `records  ${report.records} live, ${report.orphans ?? 'uncounted'} orphan`,
          `store    ${report.storeBytes} bytes, ${report.deadBytes} dead`,
          `damage   ${damaged === 0 ? 'none' : `${damaged} problem${damaged === 1 ? '' : 's'}`}`,
        ];
        for (const problem of report.problems.slice(0, MAX_PROBLEM_LINES)) lines.push(`${problem.kind}: ${problem.message}`);
        const more = report.problems.length - MAX_PROBLEM_LINES;
        if (more > 0) lines.push(`... and ${more} more (--json lists all)`);
        return lines.join('\n');
      });
      if (!report.ok) {
        if (!global.json) process.stderr.write(`keynode: the node is damaged: ${damaged} problem${damaged === 1 ? '' : 's'} found (ERR_INTEGRITY)\n`);
        process.exitCode = EXIT_CODES.ERR_INTEGRITY;
      }
    });
}
