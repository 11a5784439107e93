import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { KeynodeNode } from '../../src/node/KeynodeNode.js';

/** Low argon2id cost for tests only (the defaults are exercised by the benchmark). */
export const TEST_KDF = { memoryKib: 8192, iterations: 1 };
export const TEST_PASSWORD = 'correct horse battery staple';

const created: string[] = [];
afterEach(() => {
  while (created.length) fs.rmSync(created.pop()!, { recursive: true, force: true });
});

/** A fresh directory removed after the test. */
export function tempDir(prefix = 'keynode-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  created.push(dir);
  return dir;
}

export async function createTestNode(nodePath = path.join(tempDir(), 'node')) {
  const { node, recoveryPhrase } = await KeynodeNode.create({ nodePath, password: TEST_PASSWORD, kdf: TEST_KDF });
  return { node, nodePath, recoveryPhrase };
}

/** Every regular file under a directory, recursively. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(full));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

/** Whether a node's lock is present (it is a symbolic link, dangling by design: lstat, not exists). */
export function lockPresent(nodePath: string): boolean {
  try {
    fs.lstatSync(path.join(nodePath, 'LOCK'));
    return true;
  } catch {
    return false;
  }
}

/**
 * Run a Node script that reports progress as lines on stdout, hand each line to `onLine` (which
 * may decide when to SIGKILL it), and resolve once it dies of SIGKILL; any other end is an error.
 */
export function runUntilKilled(args: string[], onLine: (line: string, child: ChildProcess) => void, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let buffered = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        onLine(line, child);
      }
    });
    child.on('exit', (_code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`${args[0]} ended without being killed: ${stderr}`))));
  });
}
