import { describe, expect, it } from 'vitest';
import { cliSandbox, startAgent } from '../helpers/cli.js';

const WRITERS = 16;
const ROUNDS = 3;

/**
 * Many CLI processes writing at once must serialise on the node lock and lose nothing: every
 * "Saved" write is there afterwards. (The lock once let a waiter delete a lock whose owner had
 * not yet written its name into it: 7 of 96 acknowledged writes vanished.)
 */
describe('concurrent writers', () => {
  for (const withAgent of [false, true]) {
    it(`${WRITERS} parallel secrets set ${withAgent ? 'through an agent' : 'without an agent'}: no acknowledged write lost`, async () => {
      const cli = cliSandbox();
      cli.init();
      cli.ok(['vaults', 'create', 'v']);
      if (withAgent) startAgent(cli);
      try {
        const acknowledged: string[] = [];
        for (let round = 0; round < ROUNDS; round++) {
          const results = await Promise.all(
            Array.from({ length: WRITERS }, (_, i) =>
              cli.runAsync(['secrets', 'set', `v:r${round}/w${i}`, '--lock-timeout', '60000'], { input: `value-${round}-${i}` }),
            ),
          );
          results.forEach((result, i) => {
            expect(result.code, result.stderr).toBe(0);
            acknowledged.push(`r${round}/w${i}`);
          });
        }
        // Every acknowledged write, with its own value.
        const exported = cli.ok(['vaults', 'export', 'v', '--format', 'json']).json() as Record<string, string>;
        for (const name of acknowledged) {
          const [round, writer] = name.split('/');
          expect(exported[name], name).toBe(`value-${round!.slice(1)}-${writer!.slice(1)}`);
        }
        expect(acknowledged).toHaveLength(WRITERS * ROUNDS);
      } finally {
        if (withAgent) cli.run(['agent', 'stop']);
      }
    });
  }
});
