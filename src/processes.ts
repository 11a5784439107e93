/** Whether a process exists (EPERM: it does, owned by someone else). Cross-cutting, like errors.ts. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
