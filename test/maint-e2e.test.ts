// End-to-end through the built CLI: forget, gc, check, stats and locks on real repositories.
import { spawnSync } from 'node:child_process';
import { randomBytes as rnd } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256, toHex } from '../src/core/ids.js';
import { describeTree, parseJson, snap } from './helpers/cli.js';
import {
  allPackBytes, check, cleanupScratch, create, expectRestores, findObject, list, lockFiles, mixedData, ok, packFile, plantLock, scratchDir, smallRepo, type SnapJson, writeFile,
} from './helpers/maint.js';

afterAll(cleanupScratch);

interface GcJson {
  dry_run: boolean;
  plan: { objects_used: number; objects_indexed: number; objects_to_free: number; packs: number; packs_changed: unknown[] };
  result?: { objects_freed: number; bytes_freed: number; size_before: number; size_after: number; packs_deleted: number; packs_rewritten: number };
}

const gcJson = (repo: string, ...args: string[]): GcJson => parseJson<GcJson>(ok(['--repo', repo, '--json', 'gc', ...args]));

describe('forget + gc', () => {
  it('frees exactly the data only the forgotten snapshot used, and the rest restores byte-exact', async () => {
    const base = scratchDir();
    const repo = await smallRepo(path.join(base, 'repo'));
    const a = path.join(base, 'src', 'a');
    const b = path.join(base, 'src', 'b');
    const only1 = rnd(300_000);
    const only2 = rnd(300_000);
    const shared = mixedData(400_000);
    const onlyB = rnd(200_000);
    writeFile(path.join(a, 'only1.bin'), only1);
    writeFile(path.join(a, 'shared.bin'), shared);
    const s1 = create(repo, a);
    fs.rmSync(path.join(a, 'only1.bin'));
    writeFile(path.join(a, 'sub', 'only2.bin'), only2);
    const s2 = create(repo, a);
    const d2 = describeTree(a);
    writeFile(path.join(b, 'b.bin'), onlyB);
    const s3 = create(repo, b);
    const d3 = describeTree(b);

    const unique = parseJson<{ unique_objects: number; unique_stored_bytes: number }>(ok(['--repo', repo, '--json', 'stats', s1.id]));
    expect(unique.unique_objects).toBeGreaterThan(5); // only1's chunks and the trees above it
    const before = gcJson(repo, '--dry-run');
    expect(before.plan.objects_to_free).toBe(0);
    expect(before.plan.objects_indexed).toBe(before.plan.objects_used);
    const sample = (buf: Buffer): Buffer => buf.subarray(150_000, 150_064); // random data is stored raw
    expect(allPackBytes(repo).includes(sample(only1))).toBe(true);

    ok(['--repo', repo, 'forget', s1.id.slice(0, 10)]);
    expect(list(repo).map((s) => s.id)).toEqual([s2.id, s3.id]);
    const r = gcJson(repo, '--max-unused', '0%');
    expect(r.result!.objects_freed).toBe(unique.unique_objects);
    expect(r.result!.bytes_freed).toBeGreaterThanOrEqual(unique.unique_stored_bytes);
    expect(r.result!.size_after).toBe(r.result!.size_before - r.result!.bytes_freed);

    const after = gcJson(repo, '--dry-run');
    expect(after.plan.objects_indexed).toBe(before.plan.objects_indexed - unique.unique_objects);
    expect(after.plan.objects_indexed).toBe(after.plan.objects_used);
    expect(after.plan.packs_changed).toEqual([]);
    const bytes = allPackBytes(repo);
    expect(bytes.includes(sample(only1))).toBe(false);
    for (const kept of [only2, onlyB, shared]) expect(bytes.includes(kept.subarray(1000, 1064))).toBe(true);

    const c = check(repo, ['--read-data']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.report).toMatchObject({ ok: true, problems: [], leftovers: [], unused_objects: 0, snapshots: 2 });
    expectRestores(repo, s2.id, a, d2);
    expectRestores(repo, s3.id, b, d3);
  });

  it('gc keeps the files cache of files whose data stays: the next backup reads only the files whose cached chunks went, and is exact', async () => {
    const base = scratchDir();
    const repo = await smallRepo(path.join(base, 'repo'));
    const src = path.join(base, 'src');
    const stays = rnd(400_000);
    const first = rnd(300_000);
    const second = rnd(300_000);
    writeFile(path.join(src, 'stays.bin'), stays);
    writeFile(path.join(src, 'deep', 'dir', 'kept.bin'), mixedData(200_000));
    writeFile(path.join(src, 'changes.bin'), first);
    const s1 = create(repo, src);
    // The second version of changes.bin is only in s2, which is forgotten: gc deletes its chunks,
    // while the files cache (last written by s2's backup) names them.
    writeFile(path.join(src, 'changes.bin'), second);
    const s2 = create(repo, src);
    ok(['--repo', repo, 'forget', s2.id.slice(0, 10)]);
    const r = parseJson<{ result: { objects_freed: number; files_cache_dropped: number } }>(ok(['--repo', repo, '--json', 'gc', '--max-unused', '0%']));
    expect(r.result.objects_freed).toBeGreaterThan(0);
    // changes.bin's entry and the records of the folders whose trees went (src's own); kept.bin's folders stay.
    expect(r.result.files_cache_dropped).toBeGreaterThanOrEqual(1);
    const s3 = parseJson<SnapJson & { summary: { filesUnchanged: number; filesChanged: number; filesNew: number; bytesRead: number } }>(ok(['--repo', repo, '--json', 'create', src]));
    // Only changes.bin is read again (before, gc cleared the whole cache and every file was read).
    expect(s3.summary.bytesRead).toBe(second.length);
    expect(s3.summary.filesUnchanged).toBe(2);
    const c = check(repo, ['--read-data']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.report).toMatchObject({ ok: true, problems: [] });
    expectRestores(repo, s3.id, src, describeTree(src));
    expect(list(repo).map((x) => x.id)).toEqual([s1.id, s3.id]);
  });

  it('a gc made by another client (its own index): this client drops only the files-cache entries naming what went, and its next backup is exact', async () => {
    const base = scratchDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    // An encrypted repository keeps its index in the cache folder: two cache folders, two clients.
    const env = (who: string): Record<string, string> => ({ SNAP_PASSWORD: 'two clients', SNAP_KDF_SCRYPT_N: '1024', SNAP_CACHE_DIR: path.join(base, `cache-${who}`) });
    const as = (who: string, args: string[]): string => ok(['--repo', repo, ...args], env(who));
    as('a', ['init', '--encrypt']);
    const second = rnd(300_000);
    writeFile(path.join(src, 'stays.bin'), rnd(400_000));
    writeFile(path.join(src, 'deep', 'kept.bin'), mixedData(200_000));
    writeFile(path.join(src, 'changes.bin'), rnd(300_000));
    const s1 = parseJson<SnapJson>(as('a', ['--json', 'create', src]));
    writeFile(path.join(src, 'changes.bin'), second);
    const s2 = parseJson<SnapJson>(as('a', ['--json', 'create', src]));
    as('b', ['forget', s2.id.slice(0, 10)]);
    as('b', ['gc', '--max-unused', '0%']);
    const s3 = parseJson<SnapJson & { summary: { filesUnchanged: number; bytesRead: number } }>(as('a', ['--json', 'create', src]));
    expect(s3.summary.bytesRead).toBe(second.length);
    expect(s3.summary.filesUnchanged).toBe(2);
    const c = snap(['--repo', repo, '--json', 'check', '--read-data'], { env: env('a') });
    expect(c.code, c.stderr).toBe(0);
    const target = scratchDir('snap-restore-');
    as('b', ['restore', s3.id, target]);
    expect(describeTree(path.join(target, src))).toEqual(describeTree(src));
    expect(parseJson<SnapJson[]>(as('b', ['list', '--json'])).map((x) => x.id)).toEqual([s1.id, s3.id]);
  });

  it('applies a policy: --dry-run shows the rule that kept each and changes nothing; an empty policy is refused', async () => {
    const base = scratchDir();
    const repo = await smallRepo(path.join(base, 'repo'));
    const src = path.join(base, 'src');
    const ids: string[] = [];
    for (const [i, t] of ['2026-01-01T10:00:00Z', '2026-01-01T12:00:00Z', '2026-01-02T10:00:00Z', '2026-01-03T10:00:00Z'].entries()) {
      writeFile(path.join(src, `f${i}`), rnd(1000));
      ids.push(create(repo, src, ['--time', t, ...(i === 0 ? ['--tag', 'keep'] : [])]).id);
    }
    const empty = snap(['--repo', repo, 'forget']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/empty policy.*\[SNAP_USAGE\]/);
    expect(snap(['--repo', repo, 'forget', ids[0]!, '--keep-last', '1']).code).toBe(2);

    const dry = parseJson<{ groups: { group: string; keep: { id: string; reasons: string[] }[]; remove: { id: string }[] }[]; would_remove: string[] }>(
      ok(['--repo', repo, '--json', 'forget', '--keep-last', '1', '--keep-tag', 'keep', '--dry-run', '--group-by', '']),
    );
    expect(dry.groups).toHaveLength(1);
    const g = dry.groups[0]!;
    expect(g.keep.map((k) => [k.id, k.reasons])).toEqual([
      [ids[3], ['last snapshot']],
      [ids[0], ['tag keep']],
    ]);
    expect(new Set(dry.would_remove)).toEqual(new Set([ids[1], ids[2]]));
    expect(list(repo)).toHaveLength(4);
    const utc = { TZ: 'UTC' }; // calendar days are local days
    const text = ok(['--repo', repo, 'forget', '--keep-daily', '2', '--dry-run'], utc);
    expect(text).toMatch(/keep\s+\w{8}.*daily snapshot/);
    expect(text).toMatch(/dry run: would remove 2 snapshot\(s\)/);

    ok(['--repo', repo, 'forget', '--keep-daily', '2', '--gc'], utc);
    expect(list(repo).map((s) => s.id)).toEqual([ids[2], ids[3]]);
    const c = check(repo);
    expect(c.report).toMatchObject({ ok: true, unused_objects: 0 });
  });
});

describe('check', () => {
  async function damagedSetup() {
    const base = scratchDir();
    const repo = await smallRepo(path.join(base, 'repo'));
    const src = path.join(base, 'src');
    const other = path.join(base, 'other');
    const victim = rnd(5000); // below the minimum chunk size: one chunk whose id is its hash
    writeFile(path.join(src, 'deep', 'victim.txt'), victim);
    writeFile(path.join(src, 'big.bin'), mixedData(600_000));
    const s1 = create(repo, src);
    writeFile(path.join(src, 'later.txt'), 'later');
    const s2 = create(repo, src);
    writeFile(path.join(other, 'x.bin'), rnd(50_000));
    const s3 = create(repo, other);
    const at = await findObject(repo, sha256(victim));
    return { repo, src, victimPath: path.join(src, 'deep', 'victim.txt'), victimId: toHex(sha256(victim)), at, s1, s2, s3 };
  }

  it('check --read-data finds a flipped byte and names the affected snapshots and paths', async () => {
    const t = await damagedSetup();
    const f = packFile(t.repo, t.at.pack);
    const bytes = fs.readFileSync(f);
    bytes[t.at.entry.offset + 10]! ^= 0x01;
    fs.chmodSync(f, 0o600);
    fs.writeFileSync(f, bytes);

    expect(check(t.repo).code).toBe(0); // structure cannot see a flipped byte in file data
    const c = check(t.repo, ['--read-data']);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/check found \d+ problem\(s\); 2 snapshot\(s\) affected \[SNAP_DAMAGED\]/);
    expect(c.report.ok).toBe(false);
    expect(c.report.problems).toContainEqual(expect.objectContaining({ kind: 'object-damaged', object: t.victimId, pack: t.at.pack }));
    expect(c.report.problems).toContainEqual(expect.objectContaining({ kind: 'pack-damaged', pack: t.at.pack }));
    const affected = new Map(c.report.affected.map((a) => [a.snapshot, a.paths]));
    expect([...affected.keys()].sort()).toEqual([t.s1.id, t.s2.id].sort());
    for (const paths of affected.values()) expect(paths).toContain(t.victimPath);

    const text = snap(['--repo', t.repo, 'check', '--read-data']);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(`snapshot ${t.s1.id.slice(0, 8)}`);
    expect(text.stdout).toContain(`    ${t.victimPath}`);
    expect(text.stdout).toMatch(/damage: object [0-9a-f]{16} \(in pack [0-9a-f]{12}\) failed verification/);
  });

  it('the structural check finds a deleted pack; gc refuses to run on it', async () => {
    const t = await damagedSetup();
    fs.rmSync(packFile(t.repo, t.at.pack));
    const c = check(t.repo);
    expect(c.code).toBe(1);
    expect(c.report.problems).toContainEqual(expect.objectContaining({ kind: 'pack-missing', pack: t.at.pack }));
    expect(c.report.affected.find((a) => a.snapshot === t.s1.id)?.paths).toContain(t.victimPath);
    expect(c.report.affected.find((a) => a.snapshot === t.s3.id)).toBeUndefined();
    const gc = snap(['--repo', t.repo, 'gc']);
    expect(gc.code).toBe(1);
    expect(gc.stderr).toMatch(/gc stopped before changing anything.*\[SNAP_MISSING_OBJECT\]/);

    // The documented way out (docs/maintenance.md): forget the affected snapshots, gc, back up again.
    const affected = c.report.affected.map((a) => a.snapshot);
    ok(['--repo', t.repo, 'forget', ...affected]);
    ok(['--repo', t.repo, 'gc']);
    const again = create(t.repo, t.src);
    expect(check(t.repo, ['--read-data']).report).toMatchObject({ ok: true, problems: [] });
    expectRestores(t.repo, again.id, t.src, describeTree(t.src));
  });

  it('reports an unindexed leftover pack as a leftover, not damage; gc removes it', async () => {
    const t = await damagedSetup();
    const leftover = Buffer.concat([Buffer.from('junk'), Buffer.alloc(12)]); // not a pack: its name must match its hash
    const { PackBuilder } = await import('../src/store/pack.js');
    const pb = new PackBuilder();
    pb.add(sha256(leftover), 'blob', leftover, leftover.length, 0);
    const sealed = pb.seal();
    writeFile(packFile(t.repo, sealed.id), sealed.bytes);
    const c = check(t.repo);
    expect(c.code).toBe(0);
    expect(c.report.leftovers).toEqual([expect.objectContaining({ kind: 'pack-unindexed', pack: sealed.id })]);
    ok(['--repo', t.repo, 'gc']);
    expect(fs.existsSync(packFile(t.repo, sealed.id))).toBe(false);
    expect(check(t.repo).report).toMatchObject({ ok: true, leftovers: [] });
  });

  it('--read-data-subset n/m parts cover every pack exactly once', async () => {
    const t = await damagedSetup();
    const all = check(t.repo, ['--read-data']).report.packs_read;
    expect(all).toBeGreaterThan(3);
    let sum = 0;
    for (const part of ['1/3', '2/3', '3/3']) sum += check(t.repo, ['--read-data-subset', part]).report.packs_read;
    expect(sum).toBe(all);
    expect(snap(['--repo', t.repo, 'check', '--read-data-subset', '4/3']).code).toBe(2);
  });
});

describe('stats', () => {
  it('reports totals, ratios and per-snapshot unique data', async () => {
    const base = scratchDir();
    const repo = await smallRepo(path.join(base, 'repo'));
    const src = path.join(base, 'src');
    writeFile(path.join(src, 'a.bin'), rnd(200_000));
    writeFile(path.join(src, 'z.txt'), Buffer.alloc(300_000, 'z'));
    create(repo, src);
    const s2 = create(repo, src);
    const s = parseJson<{ snapshots: number; logical_bytes: number; dedup_ratio: number; compression_ratio: number; pack_bytes: number; stored_bytes: number }>(
      ok(['--repo', repo, '--json', 'stats']),
    );
    expect(s.snapshots).toBe(2);
    expect(s.logical_bytes).toBe(2 * 500_000);
    expect(s.dedup_ratio).toBeGreaterThan(1.9);
    expect(s.compression_ratio).toBeGreaterThan(1.2);
    expect(s.pack_bytes).toBeGreaterThanOrEqual(s.stored_bytes);
    const one = parseJson<{ unique_objects: number; objects: number; unique_raw_bytes: number }>(ok(['--repo', repo, '--json', 'stats', s2.id]));
    expect(one.objects).toBeGreaterThan(10);
    // Same files: only trees above the source can differ (the root tree records /tmp's mtime).
    expect(one.unique_objects).toBeLessThanOrEqual(3);
    expect(one.unique_raw_bytes).toBeLessThan(3000);
    expect(ok(['--repo', repo, 'stats'])).toMatch(/deduplication:\s+\d/);
  });
});

describe('locks', () => {
  it('a stale lock of a dead process is broken with a message', async () => {
    const base = scratchDir();
    const repo = await smallRepo(path.join(base, 'repo'));
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const id = plantLock(repo, { pid: dead, command: 'gc' });
    const r = snap(['--repo', repo, 'list']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`removed a stale lock: an exclusive lock of 'gc' \\(pid ${dead} on .*its process \\(pid ${dead}\\) is no longer running`));
    expect(lockFiles(repo)).not.toContain(id);
    expect(lockFiles(repo)).toEqual([]);
  });

  it('a live exclusive lock makes create wait for --lock-wait, then fail cleanly with SNAP_LOCKED', async () => {
    const base = scratchDir();
    const repo = await smallRepo(path.join(base, 'repo'));
    const src = path.join(base, 'src');
    writeFile(path.join(src, 'f'), 'data');
    const id = plantLock(repo, { pid: process.pid, command: 'gc' }); // this test process: alive
    const t0 = Date.now();
    const r = snap(['--repo', repo, '--lock-wait', '2s', 'create', src]);
    const waited = Date.now() - t0;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`repository is locked: an exclusive lock of 'gc' \\(pid ${process.pid} on .*gave up after 2 s.*\\[SNAP_LOCKED\\]`));
    expect(r.stderr).toMatch(/waiting for an exclusive lock/);
    expect(waited).toBeGreaterThanOrEqual(2000);
    expect(lockFiles(repo)).toEqual([id]); // create left no lock of its own
    fs.rmSync(path.join(repo, 'locks', id));
    expect(list(repo)).toEqual([]);
    // A shared lock does not stop another shared one.
    plantLock(repo, { pid: process.pid, exclusive: false, command: 'restore' });
    ok(['--repo', repo, '--lock-wait', '0', 'create', src]);
    expect(snap(['--repo', repo, '--lock-wait', '0', 'gc']).stderr).toMatch(/a shared lock of 'restore'.*\[SNAP_LOCKED\]/);
  });
});
