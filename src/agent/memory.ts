import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * Make the agent process forget what it drops. JavaScript strings cannot be zeroed, and freed
 * memory keeps its bytes until reused: a password or a value that went through the agent could
 * be read from its memory long after (measured: the password 10 times, a value 6 times, after
 * `agent lock`). So, for the agent's process only:
 * - V8 zeroes memory it frees (--clear-free-memory), and the agent can ask for a full
 *   collection (after lock and after unlock), so dropped strings are gone, not just unreachable;
 * - Buffers are never carved from the shared 8 KiB pool (Buffer.poolSize = 0): a pooled copy of
 *   a password (argon2 makes one) lives as long as any neighbour in its slab and cannot be
 *   zeroed by anyone; an unpooled one is freed, and zeroed, with its own object.
 * Call once, first thing in the agent's process (before the password is read). Returns the
 * collector to hand to Agent.start. Measured effect and limits: docs/agent-security.md.
 */
export function hardenAgentMemory(): () => void {
  Buffer.poolSize = 0;
  v8.setFlagsFromString('--clear-free-memory');
  v8.setFlagsFromString('--expose-gc');
  // A context created after --expose-gc has `gc`; the main context does not get it late.
  const gc = vm.runInNewContext('gc') as () => void;
  return () => {
    gc();
    gc(); // a second pass frees what the first one only found (weak references, finalizers)
  };
}
