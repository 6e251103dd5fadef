// gc and forget against other processes: a backup running at the same time, and kill -9 at
// random moments (seeded: SNAP_SEED=<n> replays a schedule). After every kill the repository
// must check clean (leftovers allowed) and every remaining snapshot must restore byte-exact.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeTree, snapAsync } from './helpers/cli.js';
import { check, cleanupScratch, create, expectRestores, list, lockFiles, ok, prng, scratchDir, smallRepo, writeFile } from './helpers/maint.js';

afterAll(cleanupScratch);

const FILES = 60;

function seedSource(src: string): void {
  for (let i = 0; i < FILES; i++) writeFile(path.join(src, `d${i % 6}`, `f${i}`), randomBytes(80_000));
}

function mutate(src: string, rand: () => number, n: number): void {
  for (let k = 0; k < n; k++) {
    const i = Math.floor(rand() * FILES);
    writeFile(path.join(src, `d${i % 6}`, `f${i}`), randomBytes(40_000 + Math.floor(rand() * 80_000)));
  }
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout?.resume();
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
}

/** Resolves once the child holds a repository lock (its lock file exists), or has exited. */
async function lockTaken(repo: string, done: { finished: boolean }): Promise<void> {
  while (!done.finished && lockFiles(repo).length === 0) await new Promise((r) => setTimeout(r, 3));
}

describe('gc with other processes', () => {
  it('a create running while gc runs (two processes, either order) yields a complete snapshot', async () => {
    const base = scratchDir();
    // deflate here (repositories made before zstd); every other maintenance test runs on zstd.
    const repo = await smallRepo(path.join(base, 'repo'), undefined, 'deflate');
    const src = path.join(base, 'src');
    seedSource(src);
    const rand = prng(7);
    for (let i = 0; i < 3; i++) {
      create(repo, src);
      mutate(src, rand, 20);
    }
    ok(['--repo', repo, 'forget', '--keep-last', '1', '--group-by', '']);

    // gc first, create while it runs.
    const extra = path.join(base, 'extra');
    writeFile(path.join(extra, 'new.bin'), randomBytes(700_000));
    const gc = snapAsync(['--repo', repo, 'gc', '--max-unused', '0%']);
    const gcState = { finished: false };
    const gcDone = exited(gc).then((r) => ((gcState.finished = true), r));
    await lockTaken(repo, gcState);
    expect(gcState.finished, 'gc was still running when create started').toBe(false);
    const cr = snapAsync(['--repo', repo, '--json', '--lock-wait', '60s', 'create', extra]);
    const crDone = exited(cr);
    const [g, c] = await Promise.all([gcDone, crDone]);
    expect(g.code, g.stderr).toBe(0);
    expect(c.code, c.stderr).toBe(0);
    const first = list(repo).find((s) => s.paths[0] === extra)!;
    expectRestores(repo, first.id, extra, describeTree(extra));

    // create first (a bigger backup), gc while it runs.
    mutate(src, rand, 30);
    const before = describeTree(src);
    const cr2 = snapAsync(['--repo', repo, '--json', 'create', src]);
    const state = { finished: false };
    const cr2Done = exited(cr2).then((r) => ((state.finished = true), r));
    await lockTaken(repo, state);
    const gc2 = snapAsync(['--repo', repo, '--lock-wait', '60s', 'gc', '--max-unused', '0%']);
    const [c2, g2] = await Promise.all([cr2Done, exited(gc2)]);
    expect(c2.code, c2.stderr).toBe(0);
    expect(g2.code, g2.stderr).toBe(0);
    const second = list(repo).filter((s) => s.paths[0] === src).at(-1)!;
    expectRestores(repo, second.id, src, before);

    const r = check(repo, ['--read-data']);
    expect(r.code, r.stdout).toBe(0);
    expect(r.report).toMatchObject({ ok: true, problems: [], leftovers: [], unused_objects: 0 });
  });

  it('kill -9 of gc and forget at random moments leaves a repository that checks clean and restores', async () => {
    const seed = Number(process.env.SNAP_SEED ?? 20261122);
    const rand = prng(seed);
    const base = scratchDir();
    const repo = await smallRepo(path.join(base, 'repo'));
    const src = path.join(base, 'src');
    seedSource(src);
    const expected = new Map<string, ReturnType<typeof describeTree>>();
    const backup = (): void => {
      expected.set(create(repo, src).id, describeTree(src));
      mutate(src, rand, 12);
    };
    backup();
    backup();
    let killedMidway = 0;
    // Up to eight rounds within 45 s, and past that (up to 16 rounds) until three commands were
    // killed midway: on a loaded machine fewer rounds fit in the time, and the test would stop
    // before it did its job.
    const started = Date.now();
    for (let iter = 0; iter < 16 && (killedMidway < 3 || (iter < 8 && Date.now() - started < 45_000)); iter++) {
      backup();
      const snaps = list(repo);
      const victim = snaps[Math.floor(rand() * (snaps.length - 1))]!;
      const op =
        iter % 3 === 0 ? ['gc', '--max-unused', '0%']
        : iter % 3 === 1 ? ['forget', '--keep-last', '3', '--group-by', '', '--gc', '--max-unused', '0%']
        : ['forget', victim.id];
      const child = snapAsync(['--repo', repo, ...op]);
      const state = { finished: false };
      const done = exited(child).then((r) => ((state.finished = true), r));
      await lockTaken(repo, state);
      // A plain forget is over in a few ms once it holds the lock; gc takes a few hundred.
      const delay = Math.floor(rand() * (op[0] === 'forget' && op.length === 2 ? 15 : 250));
      await new Promise((r) => setTimeout(r, delay));
      if (!state.finished) {
        child.kill('SIGKILL');
        killedMidway++;
      }
      const r = await done;
      const why = `seed ${seed}, iteration ${iter}: ${op.join(' ')} killed after ${delay} ms (${r.signal ?? `exit ${r.code}`})\n${r.stderr}`;

      if (process.env.SNAP_DEBUG_KILLS) console.log(why);
      const c = check(repo);
      expect(c.code, `${why}\n${c.stdout}\n${c.stderr}`).toBe(0);
      expect(c.report.problems, why).toEqual([]);
      for (const s of list(repo)) expectRestores(repo, s.id, src, expected.get(s.id)!);
    }
    expect(killedMidway).toBeGreaterThan(2);
    // The next gc removes every leftover; nothing unused or damaged remains.
    ok(['--repo', repo, 'gc', '--max-unused', '0%']);
    const final = check(repo, ['--read-data']);
    expect(final.code, final.stdout).toBe(0);
    expect(final.report).toMatchObject({ ok: true, leftovers: [], unused_objects: 0 });
    expect(fs.readdirSync(path.join(repo, 'locks')).filter((n) => !n.startsWith('.tmp-'))).toEqual([]);
  }, 600_000);
});
