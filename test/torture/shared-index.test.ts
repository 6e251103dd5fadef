// kill -9 of whichever process owns the shared index (docs/design.md, "Sharing the index"), at
// seeded random moments while backups and readers run: every other process finishes, or fails with
// a clear error and succeeds when run again; every listed snapshot restores exactly; check is clean.
// SNAP_TORTURE=1 runs more rounds, larger trees, and a 1 GiB backup with readers alongside.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import {
  LONG, type CliResult, type CliRun, type Expectation, type Manifest, type Rng, assertSameTree, cleanupTmp, cli, cliOk, genTree, indexDirOf, initSmallRepo, iters, listSnapshots,
  manifest, mutateTree, restoreAllInProcess, restoredAt, seededIt, sleep, startCli, tmpDir,
} from './lib.js';

afterAll(cleanupTmp);

const MAX_FILE = LONG ? 2_000_000 : 400_000;

function ownerPid(repo: string): number | undefined {
  try {
    return (JSON.parse(fs.readFileSync(path.join(indexDirOf(repo), 'snap-index.owner'), 'utf8')) as { pid: number }).pid;
  } catch {
    return undefined;
  }
}

/** A failure a user can act on: a SNAP_* code, no internal error, no stack trace. */
function expectClearFailure(r: CliResult, what: string): void {
  expect(r.stderr, `${what}: a clear error`).toMatch(/SNAP_[A-Z_]+/);
  expect(r.stderr, `${what}: not an internal error`).not.toMatch(/SNAP_INTERNAL|\n\s+at /);
}

interface Job {
  what: string;
  args: string[];
  run: CliRun;
  killed: boolean;
  /** Checks the output of a run that succeeded. */
  verify?: (r: CliResult) => void;
  /** For backups: the tag and what the tree held. */
  tag?: string;
}

describe('kill -9 of the index owner', () => {
  seededIt(
    'others finish or fail clearly and succeed when re-run; every listed snapshot restores; check is clean',
    async (rng: Rng) => {
      const base = tmpDir();
      const repo = path.join(base, 'repo');
      await initSmallRepo(repo);
      const trees = [0, 1, 2].map((i) => {
        const d = path.join(base, `src${i}`);
        genTree(rng, d, { files: LONG ? 100 : 30, dirs: 5, maxFile: MAX_FILE, symlinks: true });
        return d;
      });
      const states = new Map<string, { tree: string; want: Manifest }>();
      let tagNo = 0;
      const backupArgs = (tree: string): { args: string[]; tag: string } => {
        const tag = `t${tagNo++}`;
        states.set(tag, { tree, want: manifest(tree) });
        return { args: ['--repo', repo, '--lock-wait', '2m', 'create', '--tag', tag, tree], tag };
      };
      // A baseline the readers read while everything else happens.
      const b0 = backupArgs(trees[0]!);
      await cliOk(b0.args);
      const baseline = (await listSnapshots(repo))[0]!;
      const baseWant = states.get(b0.tag)!.want;

      let kills = 0;
      let takeovers = 0;
      let failedThenRerun = 0;
      for (let round = 0; round < iters(4, 12); round++) {
        const what = `round ${round}`;
        for (const t of trees) mutateTree(rng, t, MAX_FILE);
        const jobs: Job[] = [];
        const start = (args: string[], job: Omit<Job, 'args' | 'run' | 'killed'>): void => {
          jobs.push({ ...job, args, run: startCli(args, { timeoutMs: 180_000 }), killed: false });
        };
        for (const t of rng.shuffle([...trees])) {
          const b = backupArgs(t);
          start(b.args, { what: `${what}: backup ${b.tag}`, tag: b.tag });
          if (rng.chance(0.5)) await sleep(rng.int(0, 150));
        }
        const target = path.join(base, `restore-${round}`);
        start(['--repo', repo, 'restore', baseline.id, target], {
          what: `${what}: restore`,
          verify: () => assertSameTree(baseWant, manifest(restoredAt(target, trees[0]!)), `${what}: restore of the baseline`),
        });
        start(['--repo', repo, 'ls', '-R', baseline.id.slice(0, 8)], {
          what: `${what}: ls -R`,
          verify: (r) => expect(r.stdout.split('\n').filter((l) => l.startsWith(trees[0]!)).length, `${what}: ls -R`).toBe(baseWant.size),
        });
        start(['--repo', repo, 'list', '--json'], {
          what: `${what}: list`,
          verify: (r) => expect((JSON.parse(r.stdout) as { id: string }[]).some((s) => s.id === baseline.id), `${what}: list`).toBe(true),
        });

        // Kill the owner once or twice, at seeded moments after one of these processes owns the index.
        const shots = rng.int(1, 2);
        for (let k = 0; k < shots; k++) {
          const owning = (): Job | undefined => {
            const pid = ownerPid(repo);
            return jobs.find((j) => j.run.child.pid === pid && j.run.child.exitCode === null && !j.killed);
          };
          const end = Date.now() + 30_000;
          while (!owning() && jobs.some((j) => j.run.child.exitCode === null) && Date.now() < end) await sleep(10);
          await sleep(rng.int(0, LONG ? 2000 : 400));
          const job = owning();
          if (!job) continue;
          job.killed = true;
          job.run.child.kill('SIGKILL');
          kills++;
          // Another process takes the index over (when any still needs it).
          const took = Date.now() + 5000;
          while (Date.now() < took && jobs.some((j) => j.run.child.exitCode === null && !j.killed)) {
            if (owning()) {
              takeovers++;
              break;
            }
            await sleep(10);
          }
        }

        for (const j of jobs) {
          const r = await j.run.done;
          if (j.killed && r.signal === 'SIGKILL') continue;
          if (r.code === 0 || r.code === 3) {
            j.verify?.(r);
            continue;
          }
          expectClearFailure(r, j.what);
          failedThenRerun++;
          // Run again: it works now, without manual cleanup.
          if (j.what.includes('restore')) fs.rmSync(target, { recursive: true, force: true });
          const again = await cli(j.args, { timeoutMs: 180_000 });
          expect(again.code, `${j.what}, run again: ${again.stderr}`).toBe(0);
          j.verify?.(again);
        }
        fs.rmSync(target, { recursive: true, force: true });
      }
      // The seeded moments are random: most rounds find an owner to kill.
      expect(kills, 'owners killed').toBeGreaterThan(0);
      console.info(`[shared-index] ${kills} owner(s) killed, ${takeovers} takeover(s) seen, ${failedThenRerun} failure(s) that succeeded when run again`);

      // Every listed snapshot restores exactly what its tree held when that backup started.
      const list: Expectation[] = [];
      for (const s of await listSnapshots(repo)) {
        const st = states.get(s.tags[0]!);
        if (!st) throw new Error(`snapshot ${s.id.slice(0, 8)} with an unknown tag`);
        list.push({ id: s.id, source: st.tree, want: st.want, what: `snapshot ${s.tags[0]}` });
      }
      await restoreAllInProcess(repo, list);
      const c = await cli(['--repo', repo, '--json', 'check']);
      expect(c.code, `check\n${c.stdout}\n${c.stderr}`).toBe(0);
      expect((JSON.parse(c.stdout) as { problems: unknown[] }).problems).toEqual([]);
    },
    LONG ? 1_800_000 : 240_000,
  );

});

describe.runIf(LONG)('a 1 GiB backup with readers alongside', () => {
  seededIt(
    'list, ls -R, cat, diff, find, export and restore of earlier snapshots succeed throughout',
    async (rng: Rng) => {
      const base = tmpDir();
      const repo = path.join(base, 'repo');
      await cliOk(['--repo', repo, 'init']);
      const small = path.join(base, 'small');
      genTree(rng, small, { files: 50, dirs: 5, maxFile: 200_000 });
      fs.writeFileSync(path.join(small, 'v.txt'), 'one\n');
      await cliOk(['--repo', repo, 'create', small]);
      fs.writeFileSync(path.join(small, 'v.txt'), 'two\n');
      const want = manifest(small);
      await cliOk(['--repo', repo, 'create', small]);
      const [s0, s1] = (await listSnapshots(repo)).map((s) => s.id.slice(0, 8));
      const big = path.join(base, 'big');
      fs.mkdirSync(big);
      for (let i = 0; i < 16; i++) fs.writeFileSync(path.join(big, `f${i}`), rng.bytes(64 * 1024 * 1024));
      const backup = startCli(['--repo', repo, 'create', big], { timeoutMs: 1_500_000 });
      let rounds = 0;
      while (backup.child.exitCode === null) {
        const r = async (args: string[]): Promise<string> => (await cliOk(['--repo', repo, '--lock-wait', '0', ...args], { timeoutMs: 120_000 })).stdout;
        expect((await listSnapshots(repo)).length).toBeGreaterThanOrEqual(2);
        expect(await r(['ls', '-R', s1!])).toContain('v.txt');
        expect(await r(['cat', s0!, path.join(small, 'v.txt')])).toBe('one\n');
        expect(await r(['diff', s0!, s1!])).toMatch(/v\.txt/);
        expect(await r(['find', 'v.txt'])).toContain(s1!);
        await r(['export', '--verify', '--force', s1!, path.join(base, 'x.tar')]);
        const target = path.join(base, 'restored');
        fs.rmSync(target, { recursive: true, force: true });
        await r(['restore', s1!, target]);
        assertSameTree(want, manifest(restoredAt(target, small)), `round ${rounds}: restore`);
        rounds++;
      }
      const b = await backup.done;
      expect(b.code, b.stderr).toBe(0);
      expect(rounds, 'reader rounds during the backup').toBeGreaterThan(0);
      expect((await listSnapshots(repo)).length).toBe(3);
    },
    1_800_000,
  );
});
