// Damage: flip a byte in, truncate or delete each kind of repository file. `check` finds the
// damage and names the affected snapshots and paths; an undamaged snapshot still restores
// exactly; a damaged one restores every intact file, names the damaged ones and exits 3; the
// index (derived data) is rebuilt or rebuildable, and wrong bytes are never written.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { type ABFixture, copyRepo, flipByte, makeABFixture, plantFile } from './repo-lib.js';
import {
  LONG, type Manifest, Rng, assertSameTree, cleanupTmp, cli, cliOk, indexDirOf, iters, listSnapshots,
  manifest, newSeed, restoredAt, seededIt, tmpDir,
} from './lib.js';

afterAll(cleanupTmp);

type Fixture = ABFixture & { idB: string };

async function makeFixture(rng: Rng): Promise<Fixture> {
  const fx = await makeABFixture(rng, { files: LONG ? 80 : 30, dirs: 5, maxFile: 300_000 });
  return { ...fx, idB: fx.idsB[0]! };
}

function copyOf(fx: Fixture): string {
  return copyRepo(fx.base, fx.repo);
}

type Damage = 'flip' | 'truncate' | 'delete';

function damage(rng: Rng, file: string, how: Damage, range?: [number, number]): string {
  const size = fs.statSync(file).size;
  if (how === 'delete') fs.rmSync(file);
  else if (how === 'truncate') fs.truncateSync(file, rng.int(0, Math.max(0, size - 1)));
  else {
    const [lo, hi] = range ?? [0, size - 1];
    flipByte(file, rng.int(lo, hi));
  }
  return `${how} ${path.basename(file)}`;
}

interface RestoreJson {
  damaged: string[];
}

/** Restore a snapshot with --json; returns exit code, the damaged list, and the restored tree's diff. */
async function restoreCheck(repo: string, id: string, src: string, want: Manifest, what: string): Promise<{ code: number; damaged: string[] }> {
  const target = tmpDir('snap-damage-restore-');
  const r = await cli(['--repo', repo, '--json', 'restore', id, target]);
  expect(r.stderr, `${what}: no internal error`).not.toMatch(/SNAP_INTERNAL/);
  if (r.code !== 0 && r.code !== 3) throw new Error(`${what}: restore exited ${r.code} (signal ${r.signal})\n${r.stderr.slice(-4000)}`);
  const out = JSON.parse(r.stdout) as RestoreJson;
  const at = restoredAt(target, src);
  // A damaged directory above the source (on the way from /) means all of it is missing: ''.
  const damagedRel = new Set(out.damaged.map((d) => path.relative(at, d)).map((p) => (p === '' || p.startsWith('..') ? '' : Buffer.from(p).toString('latin1'))));
  // Everything not named damaged is restored exactly; nothing named damaged exists.
  const expected: Manifest = new Map();
  for (const [k, v] of want) {
    const dmg = [...damagedRel].some((d) => k === d || (d !== '' && k.startsWith(`${d}/`)) || d === '');
    if (!dmg) expected.set(k, v);
  }
  const got = fs.existsSync(at) ? manifest(at) : new Map();
  for (const d of damagedRel) {
    const g = got.get(d);
    if (g && g.type === 'file') throw new Error(`${what}: damaged file ${d} exists under its final name`);
  }
  // Directories named damaged exist but are empty of what could not be read.
  for (const [k, g] of got) if (!expected.has(k) && damagedRel.has(k) && g.type === 'dir') expected.set(k, g);
  assertSameTree(expected, got, what, { mtimes: false, modes: false });
  // ...and with modes and mtimes, for the files.
  for (const [k, w] of expected) {
    const g = got.get(k);
    if (w.type === 'file' && g) expect(g.mode, `${what}: mode of ${k}`).toBe(w.mode);
  }
  fs.rmSync(target, { recursive: true, force: true });
  return { code: r.code!, damaged: out.damaged };
}

interface CheckJson {
  ok: boolean;
  problems: { kind: string; message: string }[];
  affected: { snapshot: string; paths: string[]; count: number }[];
}

async function checkJson(repo: string, readData: boolean): Promise<{ code: number; report: CheckJson; stderr: string }> {
  const r = await cli(['--repo', repo, '--json', 'check', ...(readData ? ['--read-data'] : [])]);
  expect(r.stderr).not.toMatch(/SNAP_INTERNAL/);
  return { code: r.code!, report: JSON.parse(r.stdout) as CheckJson, stderr: r.stderr };
}

describe('damage', () => {
  const seed = newSeed();
  let fx: Fixture;
  beforeAll(async () => {
    try {
      fx = await makeFixture(new Rng(seed));
    } catch (e) {
      console.error(`[torture] damage fixture failed with seed ${seed}`);
      throw e;
    }
  }, 120_000);

  for (const type of ['blob', 'tree'] as const) {
    for (const how of ['flip', 'truncate', 'delete'] as const) {
      seededIt(`a ${type} pack: ${how}`, async (rng) => {
        for (let i = 0; i < iters(1, 4); i++) {
          const repo = copyOf(fx);
          const candidates = fx.packsB.filter((p) => p.type === type);
          expect(candidates.length, `snapshot B has ${type} packs`).toBeGreaterThan(0);
          const p = rng.pick(candidates);
          const e = rng.pick(p.entries);
          const what = `${damage(rng, path.join(repo, path.relative(fx.repo, p.file)), how, [e.offset, e.offset + e.length - 1])} (${type} pack of B)`;
          // check finds it (flips inside data need --read-data) and names B, never A.
          const c = await checkJson(repo, true);
          expect(c.code, `${what}: check --read-data exit code\n${c.stderr}`).toBe(1);
          expect(c.report.problems.length, what).toBeGreaterThan(0);
          const affected = c.report.affected.map((a) => a.snapshot);
          expect(affected, `${what}: affected snapshots`).toContain(fx.idB);
          expect(affected, `${what}: A is not affected`).not.toContain(fx.idA);
          const affB = c.report.affected.find((a) => a.snapshot === fx.idB)!;
          expect(affB.count, what).toBeGreaterThan(0);
          // The paths it names are B's: inside B's source (or a directory on the way to it).
          for (const p of affB.paths) expect(fx.srcB.startsWith(p.replace(/\/$/, '')) || p.startsWith(`${fx.srcB}/`), `${what}: named path ${p}`).toBe(true);
          // The undamaged snapshot restores exactly.
          const a = await restoreCheck(repo, fx.idA, fx.srcA, fx.wantA, `${what}: restore A`);
          expect(a.code, `${what}: restore A`).toBe(0);
          // The damaged one restores all it can, names the rest, exits 3.
          const b = await restoreCheck(repo, fx.idB, fx.srcB, fx.wantB, `${what}: restore B`);
          if (how === 'truncate' && b.code === 0) {
            // Truncating after the last object B reads (only the header) can leave every object readable.
            continue;
          }
          expect(b.code, `${what}: restore B exit code`).toBe(3);
          expect(b.damaged.length, `${what}: damaged files named`).toBeGreaterThan(0);
        }
      });
    }
  }

  seededIt('a snapshot record: flip, truncate, delete', async (rng) => {
    for (const how of ['flip', 'truncate', 'delete'] as const) {
      const repo = copyOf(fx);
      const file = path.join(repo, 'snapshots', fx.idB);
      const what = damage(rng, file, how);
      if (how !== 'delete') {
        const c = await checkJson(repo, false);
        expect(c.code, `${what}: check finds a damaged snapshot record`).toBe(1);
        expect(JSON.stringify(c.report.problems), what).toContain(fx.idB.slice(0, 8));
      }
      const a = await restoreCheck(repo, fx.idA, fx.srcA, fx.wantA, `${what}: restore A`);
      expect(a.code, what).toBe(0);
      // After an index rebuild a record that cannot be read is no longer listed (and said so).
      const rb = await cli(['--repo', repo, 'index', 'rebuild']);
      expect(rb.stderr, what).not.toMatch(/SNAP_INTERNAL/);
      if (how !== 'delete') expect(rb.stderr, `${what}: rebuild names the record`).toContain(fx.idB.slice(0, 8));
      const ids = (await listSnapshots(repo)).map((s) => s.id);
      expect(ids, what).toContain(fx.idA);
      expect(ids, what).not.toContain(fx.idB);
    }
  });

  seededIt('the config: flip, truncate, delete', async (rng) => {
    for (let i = 0; i < iters(4, 16); i++) {
      const repo = copyOf(fx);
      const how = (['flip', 'truncate', 'delete'] as const)[i % 3]!;
      const what = damage(rng, path.join(repo, 'config'), how);
      const r = await cli(['--repo', repo, '--json', 'restore', fx.idA, tmpDir()]);
      expect(r.stderr, what).not.toMatch(/SNAP_INTERNAL/);
      if (r.code === 0) {
        // A flip that still parses (say, inside the gear seed) must not change what restores.
        await restoreCheck(repo, fx.idA, fx.srcA, fx.wantA, `${what}: restore A`);
      } else {
        expect(r.code, `${what}\n${r.stderr}`).toBe(1);
        expect(r.stderr, what).toMatch(/\[SNAP_(BAD_CONFIG|NO_REPO)\]/);
      }
    }
  });

  seededIt('lock files: garbage, a dead holder, a damaged live one', async (rng) => {
    const repo = copyOf(fx);
    fs.mkdirSync(path.join(repo, 'locks'), { recursive: true, mode: 0o700 });
    const lockName = (id: string) => `locks/${id.padEnd(64, '0')}`;
    const lockFile = (id: string) => path.join(repo, lockName(id));
    // Records are stored as snap stores them (sealed in an encrypted repository); garbage is raw.
    const plantLock = (id: string, text: string) => plantFile(repo, lockName(id), Buffer.from(text));
    // Garbage where a lock record should be: ignored with a warning.
    fs.writeFileSync(lockFile('aa'), rng.bytes(100), { mode: 0o600 });
    // A record of a process that no longer runs, on this host: removed as stale, with a message.
    const host = (await import('node:os')).hostname();
    const now = new Date().toISOString();
    await plantLock('bb', JSON.stringify({ host, pid: 2 ** 22 + 12345, time: now, refreshed: now, exclusive: true, command: 'gc' }));
    // A truncated record.
    await plantLock('cc', JSON.stringify({ host, pid: 1, time: now, refreshed: now, exclusive: true, command: 'gc' }).slice(0, 30));
    const r = await cli(['--repo', repo, '--lock-wait', '5s', 'restore', fx.idA, tmpDir()]);
    expect(r.code, r.stderr).toBe(0);
    if (fs.existsSync(lockFile('bb'))) throw new Error(`a dead holder's lock was not removed\n${r.stderr}`);
    expect(r.stderr).toMatch(/stale/);
    await restoreCheck(repo, fx.idA, fx.srcA, fx.wantA, 'with damaged lock files');
    // An exclusive lock of a live process (pid 1, this host) blocks a backup, with a clear error.
    await plantLock('dd', JSON.stringify({ host, pid: 1, time: now, refreshed: now, exclusive: true, command: 'gc' }));
    const blocked = await cli(['--repo', repo, '--lock-wait', '1s', 'create', fx.srcA]);
    expect(blocked.code, blocked.stderr).toBe(1);
    expect(blocked.stderr).toMatch(/\[SNAP_LOCKED\]/);
  });
});

describe('damage to the LevelDB index', () => {
  const seed = newSeed();
  let fx: Fixture;
  beforeAll(async () => {
    fx = await makeFixture(new Rng(seed));
    // A few more opens, so LevelDB has compacted its log into table (.ldb) files.
    for (let i = 0; i < 3; i++) await cliOk(['--repo', fx.repo, 'list']);
  }, 120_000);

  function indexFiles(repo: string): string[] {
    return fs.readdirSync(indexDirOf(repo)).sort();
  }

  seededIt('each index file flipped, truncated or deleted: detected and rebuilt, or harmless; never wrong data', async (rng) => {
    const kinds = indexFiles(fx.repo);
    expect(kinds.some((f) => f.endsWith('.ldb')), `index files: ${kinds.join(' ')}`).toBe(true);
    const notes: string[] = [];
    // Every (file, damage) pair in the long run; a seeded sample (always one table file) in the short one.
    let pairs = kinds.flatMap((f) => (['flip', 'truncate', 'delete'] as const).map((how) => [f, how] as const));
    if (!LONG) {
      const ldb = rng.shuffle(pairs.filter(([f]) => f.endsWith('.ldb')));
      pairs = [ldb[0]!, ...rng.shuffle(pairs.filter((p) => p !== ldb[0])).slice(0, 5)];
    }
    for (const [f, how] of pairs) {
      {
        const repo = copyOf(fx);
        const file = path.join(indexDirOf(repo), f);
        if (fs.statSync(file).size === 0 && how !== 'delete') continue;
        const what = `index/${f}: ${damage(rng, file, how)}`;
        // Any command copes: the index is rebuilt when it cannot be opened or is incomplete.
        const l = await cli(['--repo', repo, 'list', '--json']);
        expect(l.stderr, what).not.toMatch(/SNAP_INTERNAL/);
        expect(l.code, `${what}: list\n${l.stderr}`).toBe(0);
        if (/rebuil/.test(l.stderr)) notes.push(`${what}: rebuilt`);
        const ids = (JSON.parse(l.stdout) as { id: string }[]).map((s) => s.id).sort();
        expect(ids, `${what}: both snapshots listed`).toEqual([fx.idA, fx.idB].sort());
        // Restores never write wrong bytes. A table file damaged in a way LevelDB does not notice
        // can hide index entries: the restore then reports files as damaged (exit 3), and an
        // index rebuild makes everything restorable again.
        let a = await restoreCheck(repo, fx.idA, fx.srcA, fx.wantA, `${what}: restore A`);
        let b = await restoreCheck(repo, fx.idB, fx.srcB, fx.wantB, `${what}: restore B`);
        if (a.code !== 0 || b.code !== 0) {
          notes.push(`${what}: restore exit ${a.code}/${b.code} before a rebuild`);
          await cliOk(['--repo', repo, 'index', 'rebuild']);
          a = await restoreCheck(repo, fx.idA, fx.srcA, fx.wantA, `${what}: restore A after rebuild`);
          b = await restoreCheck(repo, fx.idB, fx.srcB, fx.wantB, `${what}: restore B after rebuild`);
          expect([a.code, b.code], what).toEqual([0, 0]);
        }
        // And a new backup works.
        await cliOk(['--repo', repo, 'create', '--tag', 'C', fx.srcA]);
        fs.rmSync(repo, { recursive: true, force: true });
      }
    }
    if (notes.length) console.info(`[torture] index damage:\n  ${notes.join('\n  ')}`);
  });
});
