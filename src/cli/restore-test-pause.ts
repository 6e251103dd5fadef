// A pause point for tests of restore races (issue 20, items 1 and 2): only when
// SNAP_RESTORE_TEST_PAUSE names a folder. At each point (ops/restore/restore.ts, RestoreOptions.testPause)
// the restore writes the file `paused` in that folder, holding the kind (`dir` or `temp`), a tab
// and the entry's path bytes, and waits until the test removes it. A test can so swap the entry
// at the very moment that matters, every time, instead of hoping a racing process hits it. Pauses
// come one at a time (writer threads and the walk wait in turn).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RestoreOptions } from '../ops/restore/restore.js';

const POLL_MS = 5;

export function restoreTestPause(control: string | undefined): RestoreOptions['testPause'] {
  if (!control) return undefined;
  const file = path.join(control, 'paused');
  let turn: Promise<void> = Promise.resolve();
  const pause = async (kind: string, p: Buffer): Promise<void> => {
    fs.writeFileSync(`${file}.tmp`, Buffer.concat([Buffer.from(`${kind}\t`), p]));
    fs.renameSync(`${file}.tmp`, file);
    while (fs.existsSync(file)) await new Promise((r) => setTimeout(r, POLL_MS));
  };
  return (at) => {
    const mine = turn.then(() => pause(at.kind, at.path));
    turn = mine.catch(() => undefined);
    return mine;
  };
}
