// A restore from S3 fetches the packs it mostly needs whole, about one GET each, not one ranged GET
// per object (store/pack-reader.ts): counted through a wrapper over the real backend on a real Ceph
// radosgw (test/helpers/counting-backend.ts passes every call on). The files restore exactly, and a
// damaged pack costs only the files whose bytes are damaged.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { Repository, type RepoOptions, remoteCacheDir } from '../src/repo/repository.js';
import { type RestoreResult, restoreSnapshot } from '../src/ops/restore/restore.js';
import type { StoredSnapshot } from '../src/model/snapshot.js';
import { locate } from '../src/ops/tree/navigate.js';
import { packIdFromName, packName } from '../src/store/pack.js';
import { describeTree, tmpDir } from './helpers/cli.js';
import { CountingBackend } from './helpers/counting-backend.js';
import { ok } from './helpers/remote-e2e.js';
import { type S3Target, s3Target } from './helpers/s3-target.js';
import { currentHost } from '../src/cli/host.js';

const BUCKET = 'restore-remote';
const PASSWORD = 'restore remote password';
const MiB = 1024 * 1024;
let target: S3Target;

beforeAll(async () => {
  target = await s3Target(BUCKET);
}, 900_000);

const unavailable = (): string | undefined => (typeof target?.info === 'string' ? target.info : undefined);

interface Place {
  repo: string;
  prefix: string;
  env: Record<string, string>;
  open(wrap?: (b: CountingBackend) => void): Promise<{ repo: Repository; counting: CountingBackend; cacheRoot: string }>;
}

/**
 * A repository on S3 with small packs (1 MiB, so a small source fills several) and small chunks
 * (256 KiB on average, at most 1 MiB: a file of a little more than 1 MiB is several), made
 * in-process.
 */
async function place(encrypted: boolean): Promise<Place> {
  if (typeof target.info === 'string') throw new Error(target.info);
  const info = target.info;
  const prefix = `rr-${randomBytes(6).toString('hex')}`;
  const repo = `s3:${info.account.endpoint}/${BUCKET}/${prefix}`;
  const home = tmpDir('snap-rr-client-');
  const env = {
    AWS_ACCESS_KEY_ID: info.account.accessKeyId,
    AWS_SECRET_ACCESS_KEY: info.account.secretAccessKey,
    AWS_REGION: info.account.region,
    XDG_CACHE_HOME: path.join(home, 'cache'),
    HOME: home,
    SNAP_PASSWORD: PASSWORD,
  };
  const opts = (backend: RepoOptions['remote'] extends infer R ? R : never) => ({
    host: currentHost(),
    sink: {},
    remote: backend,
    password: async () => Buffer.from(PASSWORD),
    indexCache: path.join(tmpDir('snap-rr-cache-'), 'index'),
  });
  const made = await Repository.init(
    repo,
    { ...opts({ backend: target.backend({ prefix }), cacheRoot: path.join(tmpDir('snap-rr-cache-'), 'snap') }), encrypt: encrypted ? { password: Buffer.from(PASSWORD), scrypt: { N: 1024, r: 8, p: 1 } } : undefined },
    { packSize: MiB, chunker: { algorithm: 'fastcdc-gear32-nc2', minSize: 64 * 1024, avgSize: 256 * 1024, maxSize: MiB, ...(encrypted ? {} : { gearSeed: 'cd'.repeat(32) }) } },
  );
  await made.close();
  return {
    repo,
    prefix,
    env,
    // A fresh client (a new cache folder), counting what is read from storage.
    open: async () => {
      const counting = new CountingBackend(target.backend({ prefix }));
      const cacheRoot = path.join(tmpDir('snap-rr-cache-'), 'snap');
      const r = await Repository.open(repo, opts({ backend: counting, cacheRoot }));
      return { repo: r, counting, cacheRoot };
    },
  };
}

/**
 * 400 small files of random bytes in a few folders (each its own object: 4.6 MiB in all, so at
 * least 4 packs of 1 MiB hold them whatever the large files' chunks are), and two files of several
 * chunks (2.6 MiB): 7.2 MiB in all, within what a restore holds at once (8 packs' worth: restore.ts
 * HELD_PACKS), so every pack can be fetched whole ahead of the writers. A source larger than that
 * (13 MiB, 11 packs) made the reads of packs that found no room ranged reads of their own, as many
 * as timing made them (12 to 17 for 11 packs).
 */
function source(): string {
  const src = path.join(tmpDir('snap-rr-src-'), 'src');
  for (let d = 0; d < 4; d++) {
    fs.mkdirSync(path.join(src, `d${d}`), { recursive: true });
    for (let i = 0; i < 100; i++) fs.writeFileSync(path.join(src, `d${d}`, `f${i}`), randomBytes(8_000 + ((i * 997) % 8_000)));
  }
  fs.writeFileSync(path.join(src, 'big1.bin'), randomBytes(1.25 * MiB));
  fs.writeFileSync(path.join(src, 'big2.bin'), randomBytes(1.25 * MiB + 12345));
  return src;
}


/** The pid of a process that has ended. */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(r.stdout.toString().trim());
}

/** Packs of blobs (file data) in the repository's index, by id, and the stored bytes of those blobs (what a restore fetches of them). */
async function blobPacks(repo: Repository): Promise<{ packs: Set<string>; bytes: number }> {
  const packs = new Set<string>();
  let bytes = 0;
  for await (const [, loc] of repo.index.objects()) {
    if (loc.type !== 'blob') continue;
    packs.add(loc.pack);
    bytes += loc.length;
  }
  return { packs, bytes };
}

describe('restore from S3 reads whole packs', () => {
  const made: string[] = [];
  afterAll(() => {
    for (const d of made) fs.rmSync(d, { recursive: true, force: true });
  });

  /**
   * Restore the snapshot, require `src` back exactly, and that every pack of file data was read
   * about once (one GET for the pack; a read that found no room beside the others is made on its
   * own): far fewer requests than one per object. The restore's result.
   */
  async function restoresReadingPacksOnce(repo: Repository, counting: CountingBackend, snap: StoredSnapshot, src: string): Promise<RestoreResult> {
    const { packs } = await blobPacks(repo);
    counting.reset();
    const to = tmpDir('snap-rr-restore-');
    made.push(to);
    const r = await restoreSnapshot(repo, snap, { target: to, asRoot: false, sink: {} });
    expect(r.damaged).toEqual([]);
    expect(describeTree(path.join(to, src))).toEqual(describeTree(src));
    const reads = counting.readsOf('data/').filter((n) => packs.has(packIdFromName(n)!));
    expect(new Set(reads).size).toBe(packs.size);
    expect(reads.length).toBeLessThanOrEqual(packs.size + 4);
    return r;
  }

  for (const encrypted of [false, true]) {
    it(`${encrypted ? 'an encrypted' : 'a plain'} repository: about one GET per pack of file data, not one per object; the files restore exactly`, async (ctx) => {
      if (unavailable()) return ctx.skip();
      const p = await place(encrypted);
      const src = source();
      ok(['--repo', p.repo, 'create', src], p.env);
      const { repo, counting, cacheRoot } = await p.open();
      try {
        const snaps = await repo.listSnapshots();
        expect(snaps).toHaveLength(1);
        // A spool left by a restore that was killed (repo/spool.ts): removed by the next one.
        const cacheDir = remoteCacheDir(cacheRoot, repo.config.id);
        const stale = path.join(cacheDir, `restore-spool-${deadPid()}-0badcafe`);
        fs.mkdirSync(path.join(stale, 'data', 'ab'), { recursive: true });
        fs.writeFileSync(path.join(stale, 'data', 'ab', 'x'), 'a copy left behind');
        // About 410 objects of file data (400 small files, the chunks of two large ones) in 1 MiB packs:
        // the small files alone fill 4, and all of them fit in what the restore holds (source).
        const blobs = await blobPacks(repo);
        expect(blobs.packs.size).toBeGreaterThanOrEqual(4);
        expect(blobs.bytes).toBeLessThan(7.5 * MiB);
        await restoresReadingPacksOnce(repo, counting, snaps[0]!, src);
        // The packs went through a spool in the cache folder, which is gone with the restore.
        expect(fs.readdirSync(cacheDir).filter((n) => n.startsWith('restore-spool-'))).toEqual([]);
      } finally {
        await repo.close();
      }
    }, 300_000);
  }

  it('7,000 files (more chunk ids than the plan looks up at once: its calls wait for one another) plan every pack: each read about once, the files restore exactly', async (ctx) => {
    if (unavailable()) return ctx.skip();
    const p = await place(true);
    const src = path.join(tmpDir('snap-rr-src-'), 'src');
    for (let d = 0; d < 7; d++) {
      fs.mkdirSync(path.join(src, `d${d}`), { recursive: true });
      for (let i = 0; i < 1000; i++) fs.writeFileSync(path.join(src, `d${d}`, `f${i}`), `${d}/${i} ${randomBytes(8 + (i % 50)).toString('hex')}\n`);
    }
    ok(['--repo', p.repo, 'create', src], p.env);
    const { repo, counting } = await p.open();
    try {
      const snaps = await repo.listSnapshots();
      // Every file's object was planned: its pack fetched whole, not one request per object.
      const r = await restoresReadingPacksOnce(repo, counting, snaps[0]!, src);
      expect(r.files).toBe(7000);
    } finally {
      await repo.close();
    }
  }, 300_000);

  it('a damaged byte in an encrypted pack: only the files whose bytes are in the damaged segment are not restored, the rest restore exactly', async (ctx) => {
    if (unavailable()) return ctx.skip();
    const p = await place(true);
    const src = source();
    ok(['--repo', p.repo, 'create', src], p.env);
    // The pack holding small file d1/f50: one byte of its sealed bytes flipped, in the segment of that file.
    const raw = target.backend({ prefix: p.prefix });
    const { repo } = await p.open();
    let pack: string;
    let offset: number;
    try {
      const snaps = await repo.listSnapshots();
      const f50 = (await locate(repo, snaps[0]!, `${src}/d1/f50`)).node!;
      const loc = (await repo.index.lookup(f50.chunks![0]!))!;
      pack = loc.pack;
      offset = loc.offset;
    } finally {
      await repo.close();
    }
    const segment = Math.floor(offset / (64 * 1024));
    const sealed = await raw.get(packName(pack));
    const at = 32 + segment * (64 * 1024 + 16) + (offset % (64 * 1024)) + 10; // 10 bytes into the file's object
    sealed[at]! ^= 0xff;
    await raw.put(packName(pack), sealed);
    await raw.close();
    const { repo: again } = await p.open();
    try {
      const to = tmpDir('snap-rr-restore-');
      made.push(to);
      const warnings: string[] = [];
      const snaps = await again.listSnapshots();
      const r = await restoreSnapshot(again, snaps[0]!, { target: to, asRoot: false, sink: { warn: (w) => warnings.push(w.message) } });
      // The damaged file is named; no more than the files of one 64 KiB segment are (a few dozen
      // at most), never the whole pack's.
      expect(r.damaged.some((d) => d.endsWith('/d1/f50'))).toBe(true);
      expect(r.damaged.length).toBeLessThanOrEqual(40);
      const want = describeTree(src);
      const got = describeTree(path.join(to, src));
      let compared = 0;
      for (const [key, desc] of want) {
        const name = Buffer.from(key, 'hex').toString();
        if (desc.type === 'dir' || r.damaged.some((d) => d.endsWith(`/${name}`))) continue;
        expect([name, got.get(key)]).toEqual([name, desc]);
        compared++;
      }
      expect(compared).toBeGreaterThan(360);
    } finally {
      await again.close();
    }
  }, 300_000);
});
