// A restore's temporary names say which process made them (src/ops/restore/temp-names.ts), so a
// restore removes only what a restore no longer running left behind: two restores into one target
// at once keep each other's temporary files and hidden folders. Unit tests of the rule with a
// host whose processes the test decides; then two real restores into one target at the same time.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { currentHost } from '../src/cli/host.js';
import type { HostInfo } from '../src/core/host.js';
import { nullSink } from '../src/core/progress.js';
import { restoreSnapshot } from '../src/ops/restore/restore.js';
import { STALE_MS, TempNames } from '../src/ops/restore/temp-names.js';
import { Repository } from '../src/repo/repository.js';
import { describeTree, snap, snapAsync } from './helpers/cli.js';
import { cleanupScratch, create, scratchDir } from './helpers/maint.js';

afterAll(cleanupScratch);

const TMP = '.snap-restore-';
const tag = (hostname: string): string => createHash('sha256').update(hostname).digest('hex').slice(0, 8);

function host(pid: number, alive: number[]): HostInfo {
  return { hostname: 'here', username: 'u', pid, uid: 0, isAlive: (p) => p === pid || alive.includes(p) };
}

describe('temporary names', () => {
  const now = Date.parse('2026-12-07T12:00:00Z');
  const recent = (): number => now - 60_000;
  const old = (): number => now - STALE_MS - 1;
  const never = (): number => {
    throw new Error('the age of an entry of this host is not asked for');
  };

  it('name the host, the pid and the run; unique within a run', () => {
    const names = new TempNames(host(4242, []));
    const a = names.next();
    const b = names.next();
    expect(a).toMatch(new RegExp(`^\\.snap-restore-${tag('here')}-4242-[0-9a-f]{8}-0$`));
    expect(b).toBe(a.replace(/-0$/, '-1'));
  });

  it("this host: another running process's entries are kept, a gone process's removed, this run's kept, an earlier run with this pid's removed", () => {
    const other = new TempNames(host(100, [])).next();
    const earlier = new TempNames(host(7, [])).next();
    const names = new TempNames(host(7, [100]));
    const mine = names.next();
    expect(names.isLeftover(Buffer.from(other), never, now)).toBe(false);
    expect(new TempNames(host(7, [])).isLeftover(Buffer.from(other), never, now)).toBe(true);
    expect(names.isLeftover(Buffer.from(mine), never, now)).toBe(false);
    expect(names.isLeftover(Buffer.from(earlier), never, now)).toBe(true);
  });

  it("another host's entries are kept until unchanged for a day (or gone)", () => {
    const theirs = Buffer.from(new TempNames({ ...host(100, []), hostname: 'there' }).next());
    const names = new TempNames(host(7, []));
    expect(names.isLeftover(theirs, recent, now)).toBe(false);
    expect(names.isLeftover(theirs, old, now)).toBe(true);
    expect(names.isLeftover(theirs, () => undefined, now)).toBe(false);
  });

  it('names of the older form, or any other name with the prefix, are leftovers', () => {
    const names = new TempNames(host(7, []));
    for (const n of [`${TMP}0badc0de-7`, `${TMP}0123456789abcdef`, `${TMP}${tag('here')}-12-zz-1`, TMP]) {
      expect(names.isLeftover(Buffer.from(n), never, now), n).toBe(true);
    }
    // Anything else is never a restore's: the user's own files, even with a similar name.
    for (const n of ['snap-restore-0badc0de-7', '.snap-restor', 'notes.txt']) expect(names.isLeftover(Buffer.from(n), never, now), n).toBe(false);
  });
});

describe('two restores into one target at once', () => {
  it("the second keeps the temporary entry the first is making in a folder both write to; both restore exactly", async () => {
    const base = scratchDir('snap-restore-two-');
    const repo = path.join(base, 'repo');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const src = path.join(base, 'src');
    for (const d of ['a/b/c', 'x/y']) {
      fs.mkdirSync(path.join(src, d), { recursive: true });
      for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(src, d, `f${i}`), `${d} ${i}\n`.repeat(i * 30 + 1));
    }
    // A FIFO: restored as a node made under a temporary name, given its metadata, then renamed
    // (the moment the test pause holds the restore at, with the node in the shared folder).
    expect(spawnSync('mkfifo', ['-m', '0640', path.join(src, 'fifo')]).status).toBe(0);
    const id = create(repo, src).id;
    const target = path.join(base, 'out');
    fs.mkdirSync(path.join(target, src), { recursive: true }); // the folders down to the source exist: both restores sweep them
    // What a killed restore of a process that is gone left there: removed.
    const dead = spawnSync('true').pid!;
    const leftover = path.join(target, src, `${TMP}${tag(os.hostname())}-${dead}-0badc0de-3`);
    fs.writeFileSync(leftover, 'cut sh');

    const r = await Repository.open(repo, { host: currentHost(), sink: nullSink });
    let second: { code: number | null; stderr: string } | undefined;
    let held: string | undefined;
    try {
      const s = (await r.listSnapshots()).find((x) => x.id === id)!;
      const res = await restoreSnapshot(r, s, {
        target,
        include: [path.join(src, 'a'), path.join(src, 'fifo')],
        asRoot: process.getuid?.() === 0,
        sink: nullSink,
        // The first restore holds its FIFO's temporary node in the source's folder; the second
        // (another process, the other folder of the source) runs to its end meanwhile.
        testPause: async ({ kind, path: p }) => {
          if (kind !== 'temp' || second) return;
          held = p.toString();
          second = await new Promise((resolve) => {
            const c = snapAsync(['--repo', repo, 'restore', id, target, '--include', path.join(src, 'x')]);
            let err = '';
            c.stderr.on('data', (d: Buffer) => (err += d.toString()));
            c.on('close', (code) => resolve({ code, stderr: err }));
          });
          expect(fs.existsSync(held), 'the second restore left the first one\'s temporary node').toBe(true);
        },
      });
      expect(res.damaged).toEqual([]);
      expect(res.warnings).toBe(0);
    } finally {
      await r.close();
    }
    expect(path.dirname(held!)).toBe(path.join(target, src));
    expect(second?.code, second?.stderr).toBe(0);
    expect(fs.existsSync(leftover)).toBe(false);
    expect(describeTree(path.join(target, src))).toEqual(describeTree(src));
    expect(spawnSync('find', [target, '-name', `${TMP}*`], { encoding: 'utf8' }).stdout).toBe('');
  });
});
