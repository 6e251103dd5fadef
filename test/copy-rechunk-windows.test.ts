// `snap copy` into a repository that cuts chunks otherwise (its own gear seed: every new
// repository has one) streams each file through the destination's chunker. That chunker's window
// is twice the largest chunk (16 MiB with the default sizes): made anew for every file, a copy of
// the bench corpus (46,000 files) spent 60-90 s of its 70-100 s collecting them (3,000 full
// collections for "external memory pressure"). The windows are now made once per file cut at once
// and kept. In-process, so the process's full collections can be counted; real repositories with
// the default chunker sizes, real files, LevelDB.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import { currentHost } from '../src/cli/host.js';
import { nullSink } from '../src/core/progress.js';
import { createSnapshot } from '../src/ops/backup/create.js';
import { copySnapshots } from '../src/ops/backup/copy.js';
import { checkRepository } from '../src/ops/maintain/check.js';
import { restoreSnapshot } from '../src/ops/restore/restore.js';
import { Repository } from '../src/repo/repository.js';
import { cleanupScratch, scratchDir } from './helpers/maint.js';

afterAll(cleanupScratch);

const FILES = 1500;

/** Full (mark-compact) collections of this process while `f` runs. */
async function majorCollections(f: () => Promise<void>): Promise<number> {
  let n = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e.detail as { kind?: number } | undefined)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) n++;
  });
  obs.observe({ entryTypes: ['gc'] });
  try {
    await f();
    // Entries are delivered on a later turn of the event loop.
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    obs.disconnect();
  }
  return n;
}

describe('snap copy that re-chunks', () => {
  it(`copies ${FILES} small files with a few chunker windows, not one per file, and the copy restores exactly`, async () => {
    const base = scratchDir('snap-copy-windows-');
    const src = path.join(base, 'src');
    for (let d = 0; d < 15; d++) {
      fs.mkdirSync(path.join(src, `d${d}`), { recursive: true });
      for (let i = 0; i < FILES / 15; i++) fs.writeFileSync(path.join(src, `d${d}`, `f${i}.txt`), `file ${d}/${i}\n`.repeat(1 + ((d * 7 + i) % 50)));
    }
    const o = { host: currentHost(), sink: nullSink };
    const from = await Repository.init(path.join(base, 'from'), o);
    const to = await Repository.init(path.join(base, 'to'), o);
    try {
      expect(from.gear.max).toBe(8 * 1024 * 1024); // the default sizes: 16 MiB windows
      await createSnapshot(from, { paths: [src], cwd: base, host: currentHost(), program: 'snap test', sink: {} });
      const snaps = await from.listSnapshots();
      let copied = 0;
      const majors = await majorCollections(async () => {
        const r = await copySnapshots(from, to, snaps, { sink: nullSink });
        copied = r.copied.length;
        expect(r.rechunked).toBe(true);
      });
      expect(copied).toBe(1);
      // One 16 MiB window per file made 24 GB of buffers here and a full collection every few files
      // (293 in this test before the change, 1 after).
      expect(majors).toBeLessThan(40);
      expect((await checkRepository(to, { readData: { kind: 'all' }, sink: nullSink })).problems).toEqual([]);
      const out = path.join(base, 'out');
      await restoreSnapshot(to, (await to.listSnapshots())[0]!, { target: out, asRoot: false, sink: {} });
      for (let d = 0; d < 15; d += 7) {
        for (let i = 0; i < FILES / 15; i += 13) {
          const rel = path.join(`d${d}`, `f${i}.txt`);
          expect(fs.readFileSync(path.join(out, src, rel)).equals(fs.readFileSync(path.join(src, rel)))).toBe(true);
        }
      }
    } finally {
      await from.close();
      await to.close();
    }
  }, 120_000);
});
