// check --read-data verifies packs on worker threads (store/verify-pool.ts) while the main thread
// walks the trees: whatever the number of threads, a clean repository reads every pack clean and
// counts the same bytes, and a damaged one gets the same problems (a flipped byte, a truncated
// pack, a missing pack), in plain and encrypted repositories (where the threads open the sealed
// packs in place). A stop (Ctrl-C) during the reading ends the check with its reason, no thread
// left busy.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupScratch, scratchDir } from './helpers/maint.js';
import { Repository } from '../src/repo/repository.js';
import { createSnapshot } from '../src/ops/backup/create.js';
import { checkRepository, type CheckReport } from '../src/ops/maintain/check.js';
import { currentHost } from '../src/cli/host.js';
import { nullSink } from '../src/core/progress.js';
import { plainSize } from '../src/backend/encrypted.js';

afterAll(() => cleanupScratch());

const PASSWORD = 'check-threads-pw-77';

async function makeRepo(encrypted: boolean): Promise<{ dir: string; repo: string; open: () => Promise<Repository> }> {
  const dir = scratchDir('snap-check-threads-');
  const repo = path.join(dir, 'repo');
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  // About 3 MiB in 256 KiB packs: a dozen packs, so several are in flight at once.
  for (let i = 0; i < 12; i++) fs.writeFileSync(path.join(src, `f${i}.bin`), Buffer.concat([randomBytes(120_000), Buffer.alloc(140_000, i)]));
  const enc = encrypted ? { password: async () => Buffer.from(PASSWORD), indexCache: path.join(dir, 'cache') } : {};
  const host = currentHost();
  const r = await Repository.init(repo, { host, sink: {}, ...enc, ...(encrypted ? { encrypt: { password: Buffer.from(PASSWORD), scrypt: { N: 1024, r: 8, p: 1 } } } : {}) }, {
    chunker: { algorithm: 'fastcdc-gear32-nc2', minSize: 4096, avgSize: 16384, maxSize: 65536, ...(encrypted ? {} : { gearSeed: 'ab'.repeat(32) }) },
    packSize: 256 * 1024,
  });
  try {
    await createSnapshot(r, { paths: [src], cwd: '/', host, program: 'test', sink: nullSink });
  } finally {
    await r.close();
  }
  return { dir, repo, open: () => Repository.open(repo, { host, sink: nullSink, ...enc }) };
}

function packFiles(repo: string): string[] {
  const out: string[] = [];
  for (const sub of fs.readdirSync(path.join(repo, 'data'))) {
    for (const f of fs.readdirSync(path.join(repo, 'data', sub))) out.push(path.join(repo, 'data', sub, f));
  }
  return out.sort();
}

async function check(open: () => Promise<Repository>, threads: number, signal?: AbortSignal): Promise<CheckReport> {
  const r = await open();
  try {
    return await checkRepository(r, { readData: { kind: 'all' }, sink: nullSink, verifyThreads: threads, signal });
  } finally {
    await r.close();
  }
}

/** The problems, in an order that does not depend on which thread finished first. */
const problems = (r: CheckReport): string[] => r.problems.map((p) => `${p.kind} ${p.pack ?? ''} ${p.object ?? ''} ${p.message}`).sort();

describe('check --read-data on threads', () => {
  for (const encrypted of [false, true]) {
    it(`${encrypted ? 'encrypted' : 'plain'}: 1, 2 and 3 threads read every pack clean, and find the same damage`, async () => {
      const s = await makeRepo(encrypted);
      const packs = packFiles(s.repo);
      expect(packs.length).toBeGreaterThan(6);
      const plainBytes = packs.reduce((n, p) => n + (encrypted ? plainSize(fs.statSync(p).size)! : fs.statSync(p).size), 0);
      for (const threads of [1, 2, 3]) {
        const r = await check(s.open, threads);
        expect(r.problems, `${threads} thread(s)`).toEqual([]);
        expect(r.packsRead).toBe(packs.length);
        expect(r.bytesRead).toBe(plainBytes);
      }

      // A byte flipped early in one pack (its first object, or for an encrypted pack its first
      // segment), another pack cut short (its trailer gone), a third deleted: three of the largest,
      // packs of file chunks (damage to the small pack of trees would hide the others' objects
      // from the walk).
      const largest = [...packs].sort((x, y) => fs.statSync(y).size - fs.statSync(x).size);
      const [flipped, truncated, deleted] = [largest[0]!, largest[1]!, largest[2]!];
      for (const p of [flipped, truncated]) fs.chmodSync(p, 0o600);
      const b = fs.readFileSync(flipped);
      b[100]! ^= 0x01;
      fs.writeFileSync(flipped, b);
      fs.truncateSync(truncated, fs.statSync(truncated).size - 3);
      fs.rmSync(deleted);
      const id = (p: string): string => path.basename(p);
      const seen: string[][] = [];
      for (const threads of [1, 2, 3]) {
        const r = await check(s.open, threads);
        const kinds = r.problems.map((p) => `${p.kind} ${p.pack?.slice(0, 12) ?? ''}`);
        expect(kinds).toContain(`pack-damaged ${id(flipped).slice(0, 12)}`);
        expect(r.problems.some((p) => p.kind === 'object-damaged' && p.pack === id(flipped))).toBe(true);
        expect(r.problems.filter((p) => p.kind === 'pack-damaged' && p.pack === id(truncated)).map((p) => p.message)).toEqual([
          expect.stringMatching(/does not match its name/),
          expect.stringMatching(/every object the index places in it is lost/),
        ]);
        // The deleted pack: missing from storage, or (an encrypted repository, whose index is in
        // the cache and follows storage at open) its objects missing from the repository.
        expect(r.problems.some((p) => (p.kind === 'pack-missing' && p.pack === id(deleted)) || p.kind === 'object-missing')).toBe(true);
        expect(r.packsRead).toBe(packs.length - 1);
        expect(r.affected.length).toBe(1);
        seen.push(problems(r));
      }
      expect(seen[1]).toEqual(seen[0]);
      expect(seen[2]).toEqual(seen[0]);
    });
  }

  for (const encrypted of [false, true]) {
    it(`${encrypted ? 'encrypted' : 'plain'}: packs the threads read themselves and packs read for them report the same damage`, async () => {
      // A local repository's packs are read by the check threads themselves (Repository.threadReads);
      // remote ones are read by the main thread and handed over. Forced onto the second way here,
      // the same damaged repository must get the same report: a flipped byte, a pack cut short, and
      // three packs that storage lists and that are then, once the reading starts, replaced by a
      // symbolic link to another pack, by a FIFO (neither is ever read), or deleted.
      const s = await makeRepo(encrypted);
      const largest = packFiles(s.repo).sort((x, y) => fs.statSync(y).size - fs.statSync(x).size);
      const [flipped, truncated, linked, fifo, gone] = largest as [string, string, string, string, string];
      for (const p of [flipped, truncated]) fs.chmodSync(p, 0o600);
      const b = fs.readFileSync(flipped);
      b[100]! ^= 0x01;
      fs.writeFileSync(flipped, b);
      fs.truncateSync(truncated, fs.statSync(truncated).size - 3);
      const kept = new Map([linked, fifo, gone].map((p) => [p, fs.readFileSync(p)]));
      const swap = (): void => {
        fs.rmSync(linked);
        fs.symlinkSync(flipped, linked);
        fs.rmSync(fifo);
        execFileSync('mkfifo', [fifo]);
        fs.rmSync(gone);
      };
      const run = async (threads: number, handedOver: boolean): Promise<{ report: CheckReport; threadReads: boolean; packsReadHere: number }> => {
        for (const [p, bytes] of kept) {
          fs.rmSync(p, { force: true });
          fs.writeFileSync(p, bytes);
        }
        const r = await s.open();
        const threadReads = r.threadReads() !== undefined;
        if (handedOver) r.threadReads = () => undefined;
        // Whole packs read on this thread (the storage's whole-blob reads of data/).
        let packsReadHere = 0;
        const backend = r.backend as unknown as Record<string, (name: string, ...rest: unknown[]) => unknown>;
        for (const m of ['get', 'getInto', 'getSealed']) {
          const f = backend[m];
          if (typeof f !== 'function') continue;
          backend[m] = (name: string, ...rest: unknown[]) => {
            if (name.startsWith('data/')) packsReadHere++;
            return f.call(backend, name, ...rest);
          };
        }
        const sink = { info: (m: string) => void (m.startsWith('reading ') && swap()) };
        try {
          return { report: await checkRepository(r, { readData: { kind: 'all' }, sink, verifyThreads: threads }), threadReads, packsReadHere };
        } finally {
          await r.close();
        }
      };
      const own = await run(1, false);
      expect(own.threadReads).toBe(true);
      expect(own.packsReadHere).toBe(0);
      const id = (p: string): string => path.basename(p);
      const about = (r: CheckReport, p: string): string[] => r.problems.filter((x) => x.pack === id(p)).map((x) => `${x.kind}: ${x.message}`);
      expect(about(own.report, flipped)).toContainEqual(expect.stringMatching(/^pack-damaged: .*does not match its name/));
      expect(about(own.report, truncated)).toContainEqual(expect.stringMatching(/every object the index places in it is lost/));
      expect(about(own.report, linked)).toContainEqual(expect.stringMatching(/^pack-missing: .* cannot be read: .* is a symbolic link, not a regular file/));
      expect(about(own.report, fifo)).toContainEqual(expect.stringMatching(/^pack-missing: .* cannot be read: .* is a FIFO, not a regular file/));
      expect(about(own.report, gone)).toContainEqual(expect.stringMatching(/^pack-missing: .* cannot be read: .* is missing/));
      for (const [threads, handedOver] of [[2, false], [1, true], [2, true]] as const) {
        const other = await run(threads, handedOver);
        expect(problems(other.report), `${threads} thread(s), ${handedOver ? 'handed over' : 'read by the threads'}`).toEqual(problems(own.report));
        expect(other.report.packsRead).toBe(own.report.packsRead);
        expect(other.report.bytesRead).toBe(own.report.bytesRead);
        if (handedOver) expect(other.packsReadHere).toBeGreaterThanOrEqual(other.report.packsRead);
        else expect(other.packsReadHere).toBe(0);
      }
    });
  }

  it('a stop during the reading ends the check with its reason; a check run afterwards in the same process is clean', async () => {
    const s = await makeRepo(true);
    const stop = new AbortController();
    const reason = new Error('stopped by the test');
    // Stopped as soon as the first pack has been read and verified.
    const r = await s.open();
    let err: unknown;
    try {
      await checkRepository(r, {
        readData: { kind: 'all' },
        verifyThreads: 2,
        signal: stop.signal,
        sink: { progress: (p) => void (p.current?.startsWith('pack ') && stop.abort(reason)) },
      });
    } catch (e) {
      err = e;
    } finally {
      await r.close();
    }
    expect(err).toBe(reason);
    expect((await check(s.open, 2)).problems).toEqual([]);
  });
});
