import type { Command } from 'commander';
import type { SecretEntry } from '../../../vaults/Vault.js';
import { parseSecretRef } from '../../../vaults/paths.js';
import { globalOptions, withClient } from '../../context.js';
import { emit, emitList } from '../../output.js';

interface TreeNode {
  name: string;
  dir: boolean;
  children: TreeNode[];
}

/** Draw entries (sorted, parents before children) as a tree under `root`. */
function drawTree(root: string, base: string, entries: SecretEntry[]): string {
  const top: TreeNode = { name: root, dir: true, children: [] };
  const nodes = new Map<string, TreeNode>([[base, top]]);
  for (const entry of entries) {
    const slash = entry.path.lastIndexOf('/');
    const parent = nodes.get(slash < 0 ? '' : entry.path.slice(0, slash)) ?? top;
    const node: TreeNode = { name: entry.path.slice(slash + 1), dir: entry.type === 'dir', children: [] };
    parent.children.push(node);
    nodes.set(entry.path, node);
  }
  const lines = [root];
  const draw = (node: TreeNode, indent: string) => {
    node.children.forEach((child, i) => {
      const last = i === node.children.length - 1;
      lines.push(`${indent}${last ? '└── ' : '├── '}${child.name}${child.dir ? '/' : ''}`);
      draw(child, indent + (last ? '    ' : '│   '));
    });
  };
  draw(top, '');
  return lines.join('\n');
}

export function register(secrets: Command): void {
  secrets
    .command('ls <vault[:dir]>')
    .description('list secrets (recursively) under a vault or directory')
    .option('--tree', 'draw a tree')
    .option('--version <commit>', 'list a past version')
    .action(async (ref: string, options: { tree?: boolean; version?: string }, command: Command) => {
      const global = globalOptions(command);
      const { vault: vaultName, path } = parseSecretRef(ref, { allowRoot: true });
      const params = { vault: vaultName, path, version: options.version };
      await withClient(global, async (client) => {
        // A tree is drawn whole (a line's shape depends on the entries after it); a list streams.
        if (options.tree && !global.json) {
          const { entries } = await client.call('secrets.ls', params);
          return emit(global, {}, () => drawTree(path === '' ? vaultName : `${vaultName}:${path}`, path, entries));
        }
        await emitList(global, { vault: vaultName, path }, 'entries', client.stream('secrets.ls', params), (e) => e.path + (e.type === 'dir' ? '/' : ''));
      });
    });
}
