// Several snap processes on one repository at once: two backups, a backup during gc, forget
// during a backup, restores meanwhile. Every command finishes (waiting for the others as needed)
// and every snapshot that completed restores exactly; check stays clean.
import * as path from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import {
  LONG, type Manifest, type Rng, assertSameTree, cleanupTmp, cli, genTree, initSmallRepo, iters, listSnapshots, manifest, mutateTree,
  restoreAllInProcess, restoredAt, seededIt, sleep, startCli, tmpDir, type CliResult,
} from './lib.js';

afterAll(cleanupTmp);

const MAX = LONG ? 1_500_000 : 400_000;

interface Source {
  dir: string;
  states: Map<string, Manifest>; // tag -> what the tree held when that backup started
}

/** Tags of backups that exited 0 or 3: each must be listed at the end unless it was forgotten. */
const completed = new Set<string>();
const forgotten = new Set<string>();

async function both(a: Promise<CliResult>, b: Promise<CliResult>, what: string): Promise<[CliResult, CliResult]> {
  const r = await Promise.all([a, b]);
  for (const x of r) {
    if (x.code !== 0 && x.code !== 3) throw new Error(`${what}: a command failed (exit ${x.code})\n${x.stderr}`);
    expect(x.stderr, what).not.toMatch(/SNAP_INTERNAL/);
  }
  return r;
}

async function verifyAll(repo: string, sources: Source[], what: string): Promise<void> {
  const list = [];
  const listed = await listSnapshots(repo);
  const tags = new Set(listed.map((s) => s.tags[0]!));
  for (const t of completed) if (!forgotten.has(t) && sources.some((x) => x.states.has(t))) expect(tags.has(t), `${what}: the snapshot of backup ${t}, which exited successfully, is listed`).toBe(true);
  for (const t of forgotten) expect(tags.has(t), `${what}: forgotten snapshot ${t} is gone`).toBe(false);
  for (const s of listed) {
    const tag = s.tags[0]!;
    const src = sources.find((x) => x.states.has(tag));
    if (!src) throw new Error(`${what}: snapshot with unknown tag ${tag}`);
    list.push({ id: s.id, source: src.dir, want: src.states.get(tag)!, what: `${what}: ${tag}` });
  }
  await restoreAllInProcess(repo, list);
  const c = await cli(['--repo', repo, 'check']);
  expect(c.code, `${what}: check\n${c.stdout}${c.stderr}`).toBe(0);
}

async function setup(rng: Rng, n: number): Promise<{ repo: string; sources: Source[] }> {
  const base = tmpDir();
  const repo = path.join(base, 'repo');
  await initSmallRepo(repo);
  const sources: Source[] = [];
  for (let i = 0; i < n; i++) {
    const dir = path.join(base, `src${i}`);
    genTree(rng, dir, { files: LONG ? 120 : 40, dirs: 6, maxFile: MAX, symlinks: true });
    sources.push({ dir, states: new Map() });
  }
  return { repo, sources };
}

let tagNo = 0;
function backup(repo: string, s: Source, rng: Rng): Promise<CliResult> {
  mutateTree(rng, s.dir, MAX);
  const tag = `t${tagNo++}`;
  s.states.set(tag, manifest(s.dir));
  return startCli(['--repo', repo, '--lock-wait', '5m', 'create', '--tag', tag, s.dir]).done.then((r) => {
    if (r.code === 0 || r.code === 3) completed.add(tag);
    return r;
  });
}

async function after<T>(ms: number, f: () => Promise<T>): Promise<T> {
  await sleep(ms);
  return f();
}

describe('concurrency: separate processes on one repository', () => {
  seededIt('two backups at once', async (rng) => {
    const { repo, sources } = await setup(rng, 2);
    for (let i = 0; i < iters(3, 15); i++) {
      // Start the second a random moment after the first (mutating its tree first).
      const a = backup(repo, sources[0]!, rng);
      const b = after(rng.int(0, 300), () => backup(repo, sources[1]!, rng));
      await both(a, b, `round ${i}`);
    }
    await verifyAll(repo, sources, 'two backups at once');
  });

  seededIt('a backup during gc, and forget during a backup', async (rng) => {
    const { repo, sources } = await setup(rng, 2);
    for (let i = 0; i < 3; i++) await both(backup(repo, sources[0]!, rng), Promise.resolve({ code: 0, signal: null, stdout: '', stderr: '' }), 'setup');
    for (let i = 0; i < iters(3, 12); i++) {
      const snaps = await listSnapshots(repo);
      const victim = rng.pick(snaps.slice(0, -1));
      forgotten.add(victim.tags[0]!);
      const forget = (): Promise<CliResult> => startCli(['--repo', repo, '--lock-wait', '5m', 'forget', victim.id]).done;
      const gc = (): Promise<CliResult> => startCli(['--repo', repo, '--lock-wait', '5m', 'gc']).done;
      const src = rng.pick(sources);
      if (i % 2 === 0) {
        // forget first, then gc while a backup starts
        await both(forget(), Promise.resolve({ code: 0, signal: null, stdout: '', stderr: '' }), 'forget');
        const g = gc();
        const c = after(rng.int(0, 400), () => backup(repo, src, rng));
        await both(g, c, `round ${i}: backup during gc`);
      } else {
        const c = backup(repo, src, rng);
        const f = after(rng.int(0, 400), forget);
        await both(c, f, `round ${i}: forget during backup`);
      }
      // The forgotten snapshot's manifest stays in the map; it simply is no longer listed.
    }
    await verifyAll(repo, sources, 'gc and forget with backups');
    const g = await cli(['--repo', repo, 'gc']);
    expect(g.code, g.stderr).toBe(0);
    await verifyAll(repo, sources, 'after a final gc');
  });

  seededIt('restores while a backup runs', async (rng) => {
    const { repo, sources } = await setup(rng, 1);
    const s = sources[0]!;
    await both(backup(repo, s, rng), Promise.resolve({ code: 0, signal: null, stdout: '', stderr: '' }), 'first');
    for (let i = 0; i < iters(2, 8); i++) {
      const [first] = await listSnapshots(repo);
      const target = tmpDir();
      const c = backup(repo, s, rng);
      const r = after(rng.int(0, 300), () => startCli(['--repo', repo, '--lock-wait', '5m', 'restore', first!.id, target]).done);
      await both(c, r, `round ${i}`);
      // What the concurrent restore wrote is the first snapshot, exactly.
      assertSameTree(s.states.get(first!.tags[0]!)!, manifest(restoredAt(target, s.dir)), `round ${i}: restore during a backup`);
    }
    await verifyAll(repo, sources, 'restores during backups');
  });
});
