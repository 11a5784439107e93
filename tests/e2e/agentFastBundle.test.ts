import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

/**
 * The bundled CLI entry (dist/cli/keynode.cjs) is what every `secrets get` loads: it must hold
 * the fast path and the one client, and nothing heavy. Bundled here the way
 * scripts/postbuild.mjs does it, with a metafile listing every module that went in.
 */
const ENTRY = path.resolve(import.meta.dirname, '../../dist/cli/main.js');

describe('the fast path bundle', () => {
  it('holds the shared client and no heavy module', async () => {
    if (!fs.existsSync(ENTRY)) throw new Error(`build first (npm run build): ${ENTRY} is missing`);
    const result = await build({
      entryPoints: [ENTRY],
      write: false,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      external: ['./program.js'],
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs).map((input) => input.replace(/^.*?dist\//, '').replace(/^.*node_modules\//, 'node_modules/'));
    // The full CLI's own client, not a copy of its session handling.
    expect(inputs).toContain('client/AgentClient.js');
    const heavy = inputs.filter(
      (input) =>
        /^node_modules\/|^(agent|vaults\/(Vault|VaultManager|transfer|trees|gitObjects)|node\/KeynodeNode|api\/(handlers|contract|schema)|storage\/LogStore|keys\/|crypto\/)/.test(
          input,
        ) || input === 'cli/program.js',
    );
    expect(heavy).toEqual([]);
    expect(result.outputFiles[0]!.contents.length).toBeLessThan(64 * 1024);
  });
});
