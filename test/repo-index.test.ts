// Index files in the repository (docs/format.md, "Index files"): a client that has never seen a
// repository (a new, empty cache folder) learns its packs from the index files, not from one header
// read per pack. Proven by counting the reads a real backend gets (test/helpers/counting-backend.ts
// passes every call to it), on a local encrypted repository and on a real Ceph radosgw:
// - a fresh client lists, restores and checks after reading index files only;
// - a backup killed (kill -9) after its packs and before its index file: the next client sees
//   everything through those packs' headers, check is clean, and gc covers them again;
// - gc compacts the index files (fewer, and everything restores);
// - a damaged index file: check names it, reads still work, repair rewrites it;
// - an index file whose entries disagree with the pack headers (an offset moved, an object left
//   out), under a valid name: a fresh client takes its word, check --read-data names it (it holds
//   every index file against the headers of the packs it reads), repair rewrites it;
// - a repository without index files (the format 1 vectors, as older snap wrote them) still reads,
//   and gets index files when written to.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { LocalBackend } from '../src/backend/local.js';
import { Repository, type RepoOptions } from '../src/repo/repository.js';
import { INDEX_FILES, decodeIndexFile, encodeIndexFile, indexFileIdFromName, packEntries, readIndexFile, unpackEntries } from '../src/repo/index-files.js';
import { EncryptedBackend } from '../src/backend/encrypted.js';
import { checkRepository } from '../src/ops/maintain/check.js';
import { executeGc, planGc } from '../src/ops/maintain/gc.js';
import { type PackEntry, packIdFromName } from '../src/store/pack.js';
import { snap, tmpDir } from './helpers/cli.js';
import { CountingBackend } from './helpers/counting-backend.js';
import { expectRestoresExactly, listSnapshots, makeSource, ok, startSnap } from './helpers/remote-e2e.js';
import { type S3Target, s3Target } from './helpers/s3-target.js';
import { currentHost } from '../src/cli/host.js';

const PASSWORD = 'index files password';

/** One place to run the scenarios: a repository location for the CLI, its storage, and in-process opens. */
interface Place {
  /** `--repo` for the CLI. */
  repo: string;
  /** The storage as stored (sealed blobs of an encrypted repository stay sealed). */
  raw: Backend;
  /** Environment of a client with a new, empty cache folder. */
  client(): Record<string, string>;
  /** `snap init` arguments. */
  init: string[];
  /** Open as a fresh client (new cache folder, or the folder `cache`), counting what is read from storage. */
  openFresh(counting: (b: Backend) => CountingBackend, sink: RepoOptions['sink'], cache?: string): Promise<Repository>;
}

function localEncrypted(): Place {
  const repo = path.join(tmpDir('snap-ri-'), 'repo');
  const client = (): Record<string, string> => {
    const home = tmpDir('snap-ri-client-');
    return { XDG_CACHE_HOME: path.join(home, 'cache'), HOME: home, SNAP_PASSWORD: PASSWORD, SNAP_KDF_SCRYPT_N: '1024' };
  };
  return {
    repo,
    raw: new LocalBackend(repo),
    client,
    init: ['init', '--encrypt'],
    openFresh: (counting, sink, cache) =>
      Repository.open(repo, { host: currentHost(), sink, wrap: counting, password: async () => Buffer.from(PASSWORD), indexCache: cache ?? path.join(tmpDir('snap-ri-cache-'), 'index') }),
  };
}

function onS3(t: S3Target): Place {
  if (typeof t.info === 'string') throw new Error(t.info);
  const info = t.info;
  const prefix = `ri-${randomBytes(6).toString('hex')}`;
  const repo = `s3:${info.account.endpoint}/${t.bucket}/${prefix}`;
  const client = (): Record<string, string> => {
    const home = tmpDir('snap-ri-client-');
    return {
      AWS_ACCESS_KEY_ID: info.account.accessKeyId,
      AWS_SECRET_ACCESS_KEY: info.account.secretAccessKey,
      AWS_REGION: info.account.region,
      XDG_CACHE_HOME: path.join(home, 'cache'),
      HOME: home,
    };
  };
  return {
    repo,
    raw: t.backend({ prefix }),
    client,
    init: ['init', '--no-encryption'],
    openFresh: (counting, sink, cache) => Repository.open(repo, { host: currentHost(), sink, remote: { backend: counting(t.backend({ prefix })), cacheRoot: cache ?? path.join(tmpDir('snap-ri-cache-'), 'snap') } }),
  };
}

async function names(b: Backend, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const x of b.list(prefix)) out.push(x.name);
  return out.sort();
}

/** Open as a fresh client, list the snapshots, and say what was read. */
async function freshOpen(p: Place, cache?: string): Promise<{ snapshots: number; packReads: string[]; indexFileReads: string[]; infos: string[] }> {
  let c: CountingBackend | undefined;
  const infos: string[] = [];
  const repo = await p.openFresh((b) => (c = new CountingBackend(b)), { info: (m) => infos.push(m), warn: (w) => infos.push(`warning: ${w.message}`) }, cache);
  try {
    const snapshots = (await repo.listSnapshots()).length;
    return { snapshots, packReads: c!.readsOf('data/'), indexFileReads: c!.readsOf(INDEX_FILES), infos };
  } finally {
    await repo.close();
  }
}

/** The packs in storage that no readable index file lists. */
async function uncovered(p: Place): Promise<string[]> {
  const packs = new Set((await names(p.raw, 'data/')).map((n) => packIdFromName(n)!).filter(Boolean));
  // Read through a repository opened for it, so an encrypted one's files are opened too.
  const repo = await p.openFresh((b) => new CountingBackend(b), {});
  try {
    for (const n of await names(p.raw, INDEX_FILES)) {
      for (const pk of await readIndexFile(repo.backend, indexFileIdFromName(n)!)) packs.delete(pk.id);
    }
  } finally {
    await repo.close();
  }
  return [...packs].sort();
}

function checkOut(p: Place, env: Record<string, string>, readData = true): { code: number; stdout: string; stderr: string } {
  const r = snap(['--repo', p.repo, 'check', ...(readData ? ['--read-data'] : [])], { env });
  return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Three backups; a fresh client then reads index files only, lists, restores and checks. */
async function freshClientReadsIndexFiles(p: Place): Promise<{ srcA: string; srcB: string }> {
  const w = p.client();
  ok(['--repo', p.repo, ...p.init], w);
  const srcA = makeSource('ri-a', 2 * 1024 * 1024);
  const srcB = makeSource('ri-b', 1024 * 1024);
  ok(['--repo', p.repo, 'create', srcA], w);
  ok(['--repo', p.repo, 'create', srcB], w);
  fs.writeFileSync(path.join(srcA, 'sub', 'f3.txt'), 'changed\n');
  ok(['--repo', p.repo, 'create', srcA], w);
  // One index file per backup, written before its snapshot record.
  expect(await names(p.raw, INDEX_FILES)).toHaveLength(3);
  expect(await uncovered(p)).toEqual([]);

  const fresh = await freshOpen(p);
  expect(fresh.snapshots).toBe(3);
  expect(fresh.packReads).toEqual([]);
  expect(fresh.indexFileReads).toHaveLength(3);
  expect(fresh.infos.join('\n')).toMatch(/index rebuilt: (\d+) packs, \d+ objects, 3 snapshots \(\1 packs from index files, 0 from pack headers\)/);

  // A client with a cache catches up with another client's backup: that backup's index file only.
  const cache = path.join(tmpDir('snap-ri-kept-'), 'cache');
  expect((await freshOpen(p, cache)).indexFileReads).toHaveLength(3);
  const srcD = makeSource('ri-d', 128 * 1024);
  ok(['--repo', p.repo, 'create', srcD], p.client());
  const files = await names(p.raw, INDEX_FILES);
  expect(files).toHaveLength(4);
  const later = await freshOpen(p, cache);
  expect(later.snapshots).toBe(4);
  expect([later.packReads, later.indexFileReads.length]).toEqual([[], 1]);
  // (A remote repository says so; a local encrypted one takes in other hosts' packs silently.)
  if (p.repo.startsWith('s3:')) expect(later.infos.join('\n')).toMatch(/caught up with the repository: [1-9]\d* new packs, 0 removed \([1-9]\d* from index files, 0 from pack headers\)/);
  ok(['--repo', p.repo, 'forget', listSnapshots(p.repo, p.client()).find((s) => s.paths[0] === srcD)!.id], p.client());
  ok(['--repo', p.repo, 'gc'], p.client());
  expect(await names(p.raw, INDEX_FILES)).toHaveLength(1); // compacted: one file for every pack kept
  const afterGc = await freshOpen(p, cache);
  expect([afterGc.snapshots, afterGc.packReads]).toEqual([3, []]);
  // gc deleted srcD's packs: the kept client dropped them (removed > 0); nothing new to read.
  if (p.repo.startsWith('s3:')) expect(afterGc.infos.join('\n')).toMatch(/caught up with the repository: \d+ new packs, [1-9]\d* removed/);

  // Through the CLI, each with a new cache folder: list, restore exactly, check --read-data clean.
  expect(listSnapshots(p.repo, p.client())).toHaveLength(3);
  expectRestoresExactly(p.repo, 'latest', srcA, p.client());
  const c = checkOut(p, p.client());
  expect([c.code, c.stderr]).toEqual([0, expect.anything()]);
  expect(c.stdout).toMatch(/^1 index file\(s\)$/m);
  return { srcA, srcB };
}

/**
 * A backup of 40 MiB from a pipe is killed (kill -9) once its first 16 MiB pack is in storage:
 * that pack is in no index file. The next fresh client reads its header (and no other), sees every
 * snapshot, and check is clean; a backup and gc then cover everything again, in fewer files.
 */
async function crashBeforeIndexFile(p: Place, srcA: string, srcB: string): Promise<string> {
  const env = p.client();
  const before = new Set(await names(p.raw, 'data/'));
  const run = startSnap(['--repo', p.repo, 'create', '--stdin', '--stdin-filename', 'big.bin'], env, { stdin: true });
  run.child.stdin!.on('error', () => {}); // the pipe breaks when it is killed
  try {
    run.child.stdin!.write(randomBytes(40 * 1024 * 1024));
    const deadline = Date.now() + 120_000;
    for (;;) {
      const now = await names(p.raw, 'data/');
      if (now.some((n) => !before.has(n))) break;
      if (run.child.exitCode !== null || Date.now() > deadline) throw new Error(`no pack appeared: ${run.stderr()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    run.child.kill('SIGKILL'); // the pipe is still open: it cannot have written its index file
    await run.exited;
  }
  expect(run.child.signalCode).toBe('SIGKILL');
  const orphans = await uncovered(p);
  expect(orphans.length).toBeGreaterThan(0);

  const fresh = await freshOpen(p);
  expect(fresh.snapshots).toBe(3);
  // Only the packs no index file lists are read from their headers (a trailer and a header each).
  expect([...new Set(fresh.packReads.map((n) => packIdFromName(n)))].sort()).toEqual(orphans);
  const c = checkOut(p, p.client(), false);
  expect([c.code, c.stderr]).toEqual([0, expect.anything()]);
  expect(c.stdout).toMatch(new RegExp(`^\\d+ index file\\(s\\); ${orphans.length} pack\\(s\\) in none`, 'm'));

  // Written to again, then collected: gc compacts every index file into one listing every pack.
  const srcC = makeSource('ri-c', 256 * 1024);
  ok(['--repo', p.repo, 'create', srcC], env);
  const filesBefore = (await names(p.raw, INDEX_FILES)).length;
  expect(filesBefore).toBe(2); // the one gc left, and this backup's
  const oldest = listSnapshots(p.repo, env).find((s) => s.paths[0] === srcA)!;
  ok(['--repo', p.repo, 'forget', oldest.id], env);
  const gc = ok(['--repo', p.repo, '--json', 'gc'], env);
  const res = JSON.parse(gc.stdout).result as { index_files_written: number; index_files_removed: number; packs_written: number };
  // gc's own new packs (rewritten ones) got an index file first, compacted with the rest.
  expect(res).toMatchObject({ index_files_written: 1, index_files_removed: filesBefore + (res.packs_written > 0 ? 1 : 0) });
  expect(await names(p.raw, INDEX_FILES)).toHaveLength(1);
  expect(await uncovered(p)).toEqual([]);
  const after = await freshOpen(p);
  expect([after.snapshots, after.packReads]).toEqual([3, []]);
  const env2 = p.client();
  const left = listSnapshots(p.repo, env2);
  expect(left.map((s) => s.paths[0]).sort()).toEqual([srcA, srcB, srcC].sort());
  for (const s of left) expectRestoresExactly(p.repo, s.id, s.paths[0]!, env2);
  const clean = checkOut(p, p.client());
  expect([clean.code, clean.stderr]).toEqual([0, expect.anything()]);
  expect(clean.stdout).toMatch(/^1 index file\(s\)$/m);
  return srcC;
}

/** A byte of an index file changed: reads work (from the pack headers), check names it, repair rewrites it. */
async function damagedIndexFile(p: Place, damage: (name: string) => Promise<void>, srcB: string): Promise<void> {
  const [name] = await names(p.raw, INDEX_FILES);
  await damage(name!);
  const fresh = await freshOpen(p);
  expect(fresh.snapshots).toBe(3);
  expect(fresh.packReads.length).toBeGreaterThan(0); // the damaged file's packs, from their headers
  expect(fresh.infos.join('\n')).toContain(name);
  const env = p.client();
  expectRestoresExactly(p.repo, listSnapshots(p.repo, env).find((s) => s.paths[0] === srcB)!.id, srcB, env);
  const c = checkOut(p, p.client(), false);
  expect(c.code).toBe(1);
  expect(c.stdout).toContain(`damage: index file ${name} is damaged`);
  const r = ok(['--repo', p.repo, 'repair'], p.client());
  expect(r.stdout).toContain(`index file ${name} is damaged; rewritten from the pack headers`);
  // The same packs make the same bytes: the file is back under its name, intact.
  expect(await names(p.raw, INDEX_FILES)).toEqual([name]);
  expect(await uncovered(p)).toEqual([]);
  const again = await freshOpen(p);
  expect([again.snapshots, again.packReads]).toEqual([3, []]);
  const clean = checkOut(p, p.client());
  expect([clean.code, clean.stderr]).toEqual([0, expect.anything()]);
}

/**
 * An index file whose entries disagree with the pack headers, under a valid name (sealed like a real
 * one in an encrypted repository): one blob entry moved by a byte (a stale or forged offset), or
 * left out. A fresh client takes the file's word; `check --read-data` holds every index file against
 * the headers of the packs it read and names the file; `repair` rewrites it from the headers.
 */
async function forgedIndexFile(p: Place, how: 'offset' | 'omitted'): Promise<void> {
  const [name] = await names(p.raw, INDEX_FILES);
  const repo = await p.openFresh((b) => new CountingBackend(b), {});
  let forged: string;
  try {
    const packs = await readIndexFile(repo.backend, indexFileIdFromName(name!)!);
    const pack = packs.find((x) => x.entries.some((e) => e.type === 'blob'))!;
    const victim = pack.entries.findIndex((e) => e.type === 'blob');
    if (how === 'offset') pack.entries[victim] = { ...pack.entries[victim]!, offset: pack.entries[victim]!.offset + 1 };
    else pack.entries.splice(victim, 1);
    const f = encodeIndexFile(packs);
    forged = `${INDEX_FILES}${f.id}`;
    await repo.backend.put(forged, f.bytes);
    await repo.backend.delete(name!);
  } finally {
    await repo.close();
  }
  const c = checkOut(p, p.client());
  expect(c.code, c.stdout).toBe(1);
  const said = how === 'offset' ? /its entry of object [0-9a-f]{16} \(offset \d+, \d+ bytes\) is not in the header of pack [0-9a-f]{12}/ : /it leaves out object [0-9a-f]{16} of pack [0-9a-f]{12}, and no other pack holds it/;
  expect(c.stdout).toMatch(new RegExp(`^damage: index file ${forged} is wrong: ${said.source}`, 'm'));
  const r = ok(['--repo', p.repo, 'repair', '--read-data'], p.client());
  expect(r.stdout).toContain(`index file ${forged} is damaged; rewritten from the pack headers`);
  // The same packs make the same bytes: the file written from the headers is the original.
  expect(await names(p.raw, INDEX_FILES)).toEqual([name]);
  const clean = checkOut(p, p.client());
  expect([clean.code, clean.stderr, clean.stdout]).toEqual([0, expect.anything(), expect.not.stringMatching(/^damage:/m)]);
}

describe('index files on a local encrypted repository', () => {
  const p = localEncrypted();
  let srcs: { srcA: string; srcB: string };

  it('a fresh client reads the index files only (no pack header), lists, restores and checks', async () => {
    srcs = await freshClientReadsIndexFiles(p);
    // Sealed like every other blob: neither a pack id nor an object id is in the stored bytes.
    const [name] = await names(p.raw, INDEX_FILES);
    const stored = await p.raw.get(name!);
    const pack = packIdFromName((await names(p.raw, 'data/'))[0]!)!;
    expect(stored.includes(Buffer.from(pack, 'hex'))).toBe(false);
    expect(stored.toString('latin1')).not.toContain(pack);
    // ...and authenticated under its name: moved to another name it does not open.
    const repo = await p.openFresh((b) => new CountingBackend(b), {});
    try {
      expect(repo.backend).toBeInstanceOf(EncryptedBackend);
      await p.raw.put(`${INDEX_FILES}${'0'.repeat(64)}`, stored);
      await expect(readIndexFile(repo.backend, '0'.repeat(64))).rejects.toThrow(/failed authentication/);
      await p.raw.delete(`${INDEX_FILES}${'0'.repeat(64)}`);
    } finally {
      await repo.close();
    }
  }, 300_000);

  it('a backup killed after its packs, before its index file: headers of those packs only; gc compacts', async () => {
    await crashBeforeIndexFile(p, srcs.srcA, srcs.srcB);
  }, 300_000);

  it('a damaged index file: check names it, reads still work, repair rewrites it', async () => {
    await damagedIndexFile(p, async (name) => {
      const file = path.join(p.repo, name);
      const b = fs.readFileSync(file);
      b[b.length - 20] = b[b.length - 20]! ^ 0x01;
      fs.writeFileSync(file, b);
    }, srcs.srcB);
  }, 300_000);

  it('an index file whose entry of a pack disagrees with its header (an offset moved): check --read-data names it, repair rewrites it', async () => {
    await forgedIndexFile(p, 'offset');
  }, 300_000);

  it('an index file that leaves out an object of a pack: check --read-data names it, repair rewrites it', async () => {
    await forgedIndexFile(p, 'omitted');
  }, 300_000);
});

describe('packs waiting for their index file (packEntries)', () => {
  it('every entry comes back as it was, offsets and sizes past 4 GiB too, and the index file made of them is the same bytes', () => {
    const entries: PackEntry[] = [
      { id: randomBytes(32), type: 'blob', codec: 1, offset: 0, length: 10, rawLength: 20 },
      { id: randomBytes(32), type: 'tree', codec: 0, offset: 2 ** 40 + 3, length: 2 ** 33, rawLength: 2 ** 47 - 1 },
      { id: randomBytes(32), type: 'blob', codec: 255, offset: 17, length: 0, rawLength: 0 },
    ];
    const back = unpackEntries(packEntries(entries));
    expect(back).toEqual(entries);
    const pack = { id: 'ab'.repeat(32), size: 12345 };
    expect(encodeIndexFile([{ ...pack, entries: back }]).bytes.equals(encodeIndexFile([{ ...pack, entries }]).bytes)).toBe(true);
    expect(unpackEntries(packEntries([]))).toEqual([]);
    expect(() => packEntries([{ ...entries[0]!, id: randomBytes(31) }])).toThrow(/cannot be packed/);
  });
});

describe('an unreadable index file that hides nothing', () => {
  it('is a leftover (check exit 0) while intact index files list every pack; gc removes it; without that cover it is damage', async () => {
    const p = localEncrypted();
    const env = p.client();
    const src = path.join(tmpDir('snap-ri-src-'), 'src');
    fs.mkdirSync(src, { recursive: true });
    fs.writeFileSync(path.join(src, 'a'), randomBytes(300_000));
    ok(['--repo', p.repo, ...p.init], env);
    ok(['--repo', p.repo, 'create', src], env);
    const [good] = await names(p.raw, INDEX_FILES);
    expect(good).toBeTruthy();
    expect(await uncovered(p)).toEqual([]);
    // What a write cut short leaves (a storage that does not write atomically): half a sealed file.
    const stray = `${INDEX_FILES}${'7'.repeat(64)}`;
    const bytes = await p.raw.get(good!);
    await p.raw.put(stray, bytes.subarray(0, Math.floor(bytes.length / 2)));
    let c = snap(['--repo', p.repo, '--json', 'check'], { env });
    expect(c.code, c.stderr).toBe(0);
    const report = JSON.parse(c.stdout) as { problems: unknown[]; leftovers: { kind: string; indexFile?: string }[] };
    expect(report.problems).toEqual([]);
    expect(report.leftovers).toEqual([expect.objectContaining({ kind: 'index-file-unneeded', indexFile: stray })]);
    ok(['--repo', p.repo, 'gc'], env);
    expect(await names(p.raw, INDEX_FILES)).not.toContain(stray);
    c = snap(['--repo', p.repo, '--json', 'check'], { env });
    expect([c.code, (JSON.parse(c.stdout) as { leftovers: unknown[] }).leftovers]).toEqual([0, []]);
    // The only index file of its packs cut short: damage (clients read those packs' headers).
    const [only] = await names(p.raw, INDEX_FILES);
    const whole = await p.raw.get(only!);
    await p.raw.put(only!, whole.subarray(0, Math.floor(whole.length / 2)));
    c = snap(['--repo', p.repo, 'check'], { env });
    expect(c.code).toBe(1);
    expect(c.stdout).toContain(`damage: index file ${only} is damaged`);
  }, 300_000);
});

describe('index files on S3 (radosgw)', () => {
  let target: S3Target;
  beforeAll(async () => {
    target = await s3Target('repo-index');
  }, 900_000);
  const unavailable = (): string | undefined => (typeof target?.info === 'string' ? target.info : undefined);
  let p: Place;
  let srcs: { srcA: string; srcB: string };

  it('a fresh client reads the index files only (no pack header), lists, restores and checks', async (ctx) => {
    if (unavailable()) return ctx.skip();
    p = onS3(target);
    srcs = await freshClientReadsIndexFiles(p);
  }, 300_000);

  it('a backup killed after its packs, before its index file: headers of those packs only; gc compacts', async (ctx) => {
    if (unavailable()) return ctx.skip();
    await crashBeforeIndexFile(p, srcs.srcA, srcs.srcB);
  }, 300_000);

  it('a damaged index file: check names it, reads still work, repair rewrites it', async (ctx) => {
    if (unavailable()) return ctx.skip();
    await damagedIndexFile(p, async (name) => {
      const b = await p.raw.get(name);
      b[b.length - 20] = b[b.length - 20]! ^ 0x01;
      await p.raw.put(name, b);
    }, srcs.srcB);
  }, 300_000);

  it('an index file whose entry of a pack disagrees with its header (an offset moved): check --read-data names it, repair rewrites it', async (ctx) => {
    if (unavailable()) return ctx.skip();
    await forgedIndexFile(p, 'offset');
  }, 300_000);

  it('an index file that leaves out an object of a pack: check --read-data names it, repair rewrites it', async (ctx) => {
    if (unavailable()) return ctx.skip();
    await forgedIndexFile(p, 'omitted');
  }, 300_000);

  it('a repository without index files (the format 1 vectors) reads from pack headers and gets index files when written to', async (ctx) => {
    if (unavailable()) return ctx.skip();
    const q = onS3(target);
    // The committed format 1 repository, blob by blob, as an older snap left it on S3.
    const vectors = path.join(import.meta.dirname, 'vectors', 'v1', 'repo');
    const files = (fs.readdirSync(vectors, { recursive: true, encoding: 'utf8' }) as string[]).filter(
      (f) => (f === 'config' || f.startsWith('data/') || f.startsWith('snapshots/')) && fs.statSync(path.join(vectors, f)).isFile(),
    );
    for (const f of files) await q.raw.put(f, fs.readFileSync(path.join(vectors, f)));
    const packs = (await names(q.raw, 'data/')).length;
    const snapshots = (await names(q.raw, 'snapshots/')).length;
    expect(packs).toBeGreaterThan(0);
    expect(await names(q.raw, INDEX_FILES)).toEqual([]);

    const first = await freshOpen(q);
    expect(first.snapshots).toBe(snapshots);
    expect(new Set(first.packReads).size).toBe(packs); // every header, as before
    const c = checkOut(q, q.client());
    expect([c.code, c.stderr]).toEqual([0, expect.anything()]);

    // Written to: the new backup's packs get an index file; the old packs are still read from headers.
    const src = makeSource('ri-old', 256 * 1024);
    ok(['--repo', q.repo, 'create', src], q.client());
    expect(await names(q.raw, INDEX_FILES)).toHaveLength(1);
    expect((await uncovered(q)).length).toBe(packs);
    // `snap index rebuild` (from every pack header) writes index files covering all of them.
    const rebuilt = ok(['--repo', q.repo, 'index', 'rebuild'], q.client());
    expect(rebuilt.stdout).toMatch(/index files: 1 written, 1 removed/);
    expect(await uncovered(q)).toEqual([]);
    const after = await freshOpen(q);
    expect([after.snapshots, after.packReads]).toEqual([snapshots + 1, []]);
    const env = q.client();
    expectRestoresExactly(q.repo, listSnapshots(q.repo, env).find((s) => s.paths[0] === src)!.id, src, env);
    const clean = checkOut(q, q.client());
    expect([clean.code, clean.stderr]).toEqual([0, expect.anything()]);
  }, 300_000);

  afterAll(async () => {
    await p?.raw.close();
  });
});

describe('index file bytes', () => {
  const entry = (n: number, offset: number): PackEntry => ({ id: Buffer.alloc(32, n), type: n % 2 ? 'tree' : 'blob', offset, length: 10, rawLength: 20, codec: 2 });
  const packA = { id: 'a'.repeat(64), size: 100, entries: [entry(2, 10), entry(1, 0)] };
  const packB = { id: 'b'.repeat(64), size: 50, entries: [entry(3, 0)] };

  it('the same packs make the same bytes, whatever their order; they decode to what was written', () => {
    const one = encodeIndexFile([packB, packA]);
    const two = encodeIndexFile([packA, { ...packB }]);
    expect(one).toEqual(two);
    expect(one.id).toBe(createHash('sha256').update(one.bytes).digest('hex'));
    // The documented layout: {"v": 1, "packs": [...]}, maps as b9 and a 2-byte count.
    expect(one.bytes.subarray(0, 6).toString('hex')).toBe('b90002617601');
    const back = decodeIndexFile(one.bytes, one.id);
    expect(back.map((p) => [p.id, p.size, p.entries.map((e) => e.offset)])).toEqual([[packA.id, 100, [0, 10]], [packB.id, 50, [0]]]);
    expect(back[0]!.entries[0]).toEqual(entry(1, 0));
  });

  it('refuses bytes that do not hash to the name, and entries outside the pack data', () => {
    const { id, bytes } = encodeIndexFile([packA]);
    const changed = Buffer.from(bytes);
    changed[changed.length - 1] = changed[changed.length - 1]! ^ 1;
    expect(() => decodeIndexFile(changed, id)).toThrow(/does not match its name/);
    // 100 bytes of pack: the data part ends at 88 (12 bytes of trailer); an entry to 98 is impossible.
    const past = encodeIndexFile([{ ...packA, entries: [entry(1, 88)] }]);
    expect(() => decodeIndexFile(past.bytes, past.id)).toThrow(/extends past the pack's data/);
    const notCbor = Buffer.from('not an index file');
    expect(() => decodeIndexFile(notCbor, createHash('sha256').update(notCbor).digest('hex'))).toThrow(/index file/);
  });
});

/** Fails the n-th write or delete (kill -9 at that instant), counting them; reads pass through. */
class CrashAt extends CountingBackend {
  calls = 0;
  constructor(inner: Backend, private readonly failAt: number) {
    super(inner);
  }
  private step(): void {
    if (this.calls++ === this.failAt) throw new Error(`injected crash at mutating call ${this.failAt}`);
  }
  override put(name: string, data: Uint8Array): Promise<void> {
    this.step();
    return super.put(name, data);
  }
  override putIfAbsent(name: string, data: Uint8Array): Promise<boolean> {
    this.step();
    return super.putIfAbsent(name, data);
  }
  override putStream(name: string, source: AsyncIterable<Uint8Array>, size?: number): Promise<void> {
    this.step();
    return super.putStream(name, source, size);
  }
  override delete(name: string): Promise<void> {
    this.step();
    return super.delete(name);
  }
}

describe('gc with index files stopped at every storage write or delete', () => {
  it('leaves no damage a fresh client or check sees (index files included), and the next gc compacts to one file', async () => {
    const p = localEncrypted();
    const env = p.client();
    ok(['--repo', p.repo, ...p.init], env);
    const src = makeSource('ri-gc', 256 * 1024);
    const first = JSON.parse(ok(['--repo', p.repo, '--json', 'create', src], env).stdout) as { id: string };
    for (let i = 0; i < 20; i += 3) fs.writeFileSync(path.join(src, 'sub', `f${i}.txt`), randomBytes(20_000));
    ok(['--repo', p.repo, 'create', src], env);
    ok(['--repo', p.repo, 'forget', first.id], env);
    const prepared = p.repo;

    const open = (root: string, failAt: number): Promise<{ repo: Repository; b: () => CrashAt }> => {
      let b: CrashAt | undefined;
      return Repository.open(root, { host: currentHost(),
        sink: {}, backend: (r) => (b = new CrashAt(new LocalBackend(r), failAt)),
        password: async () => Buffer.from(PASSWORD), indexCache: path.join(tmpDir('snap-ri-cache-'), 'index'),
      }).then((repo) => ({ repo, b: () => b! }));
    };
    const gc = async (root: string, failAt: number): Promise<{ calls: number; error?: unknown }> => {
      const { repo, b } = await open(root, failAt);
      try {
        const o = { maxUnused: 0, sink: {} };
        await executeGc(repo, await planGc(repo, o), o);
        return { calls: b().calls };
      } catch (error) {
        return { calls: b().calls, error };
      } finally {
        await repo.close();
      }
    };
    /** What a fresh client's check (every pack read) finds. */
    const damage = async (root: string): Promise<{ problems: string[]; unused: number; leftovers: number }> => {
      const { repo } = await open(root, -1);
      try {
        const r = await checkRepository(repo, { sink: {}, readData: { kind: 'all' } });
        return { problems: r.problems.map((x) => x.message), unused: r.unusedObjects, leftovers: r.leftovers.length };
      } finally {
        await repo.close();
      }
    };

    const base = tmpDir('snap-ri-gc-');
    const dry = path.join(base, 'dry');
    fs.cpSync(prepared, dry, { recursive: true });
    const full = await gc(dry, -1);
    expect(full.error).toBeUndefined();
    expect(full.calls).toBeGreaterThan(4); // new packs, their index file, the compacted file, deletes
    const indexFiles = (root: string): string[] => fs.readdirSync(path.join(root, 'packindex')).filter((f) => !f.startsWith('.'));
    expect([indexFiles(prepared).length, indexFiles(dry).length]).toEqual([2, 1]); // one per backup; compacted
    for (let n = 0; n < full.calls; n++) {
      const root = path.join(base, `crash-${n}`);
      fs.cpSync(prepared, root, { recursive: true });
      const r = await gc(root, n);
      expect(String(r.error), `crash at call ${n}`).toMatch(/injected crash/);
      expect((await damage(root)).problems, `after a crash at call ${n}`).toEqual([]);
      const again = await gc(root, -1);
      expect(again.error, `gc after a crash at call ${n}`).toBeUndefined();
      expect(await damage(root), `after the next gc (crash at call ${n})`).toEqual({ problems: [], unused: 0, leftovers: 0 });
      expect(indexFiles(root), `index files after the next gc (crash at call ${n})`).toEqual(indexFiles(dry));
      fs.rmSync(root, { recursive: true, force: true });
    }
  }, 600_000);
});
