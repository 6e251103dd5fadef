// The old generation's growth for the commands that back up (create, watch). V8 lets the old
// generation grow by a factor of its own (up to 4: it expects a heap to be what a program keeps)
// between full collections; a backup's heap is mostly garbage, and an encrypted first backup of the
// bench corpus peaked 60-90 MiB lower with the factor fixed at 1.2 (--heap-growing-percent=20), at
// the same CPU time. Other commands keep V8's own factor: `check --read-data`, whose heap is more
// what it keeps, took 3-13 % more CPU with it (docs/performance.md, "The old generation's growth").
// Set here, when the command is known, rather than by bin/snap, which does not parse arguments:
// V8 reads the flag at every full collection, so setting it before the backup starts is as good
// as at start (the same peaks, measured).
import * as v8 from 'node:v8';

export const BACKUP_HEAP_FLAG = '--heap-growing-percent=20';

/** The flag a backup sets, or undefined when node was started with a growing factor of its own (`node --heap-growing-percent=N`). */
export function backupHeapFlag(execArgv: readonly string[]): string | undefined {
  return execArgv.some((a) => a.startsWith('--heap-growing-percent')) ? undefined : BACKUP_HEAP_FLAG;
}

/** Before a backup: fix the old generation's growth (backupHeapFlag). */
export function useBackupHeap(execArgv: readonly string[]): void {
  const flag = backupHeapFlag(execArgv);
  if (flag) v8.setFlagsFromString(flag);
}
