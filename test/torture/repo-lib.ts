// Shared parts of the damage, repair and fault tests: reading pack tables, damaging files,
// copying fixture repositories, fault positions and the errors a storage fault may cause.
import { currentHost } from '../../src/cli/host.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'vitest';
import { SnapError } from '../../src/core/errors.js';
import { restoreSnapshot } from '../../src/ops/restore/restore.js';
import type { Repository } from '../../src/repo/repository.js';
import { FILE_NONCE_BYTES, SEGMENT_BYTES } from '../../src/backend/encrypted.js';
import { GCM_TAG_BYTES } from '../../src/core/crypto.js';
import { type PackEntry, packIdFromName, readPackHeader } from '../../src/store/pack.js';
import { packs } from '../helpers/maint.js';
import { ENC_OPEN, ENCRYPTED, copyIndexCache, type Manifest, type Rng, assertSameTree, cliOk, genTree, initSmallRepo, listSnapshots, manifest, restoredAt, tmpDir } from './lib.js';

/**
 * Every pack of a repository with its table of contents (one helper for all tests). In an
 * encrypted repository (SNAP_TORTURE_ENCRYPTED) the tables are read through the repository's
 * decrypting backend, and each entry's offset and length are where its bytes lie in the stored
 * (sealed) file, so a test that damages an object's range damages that object there too.
 */
export async function packsOf(repo: string): Promise<Map<string, PackEntry[]>> {
  if (!ENCRYPTED) return packs(repo);
  const { Repository } = await import('../../src/repo/repository.js');
  const r = await Repository.open(repo, { host: currentHost(), sink: {}, ...ENC_OPEN });
  const out = new Map<string, PackEntry[]>();
  try {
    for await (const blob of r.backend.list('data/')) {
      const id = packIdFromName(blob.name);
      if (!id) continue;
      out.set(id, (await readPackHeader(r.backend, id)).map((e) => {
        const start = sealedOffset(e.offset);
        return { ...e, offset: start, length: sealedOffset(e.offset + e.length - 1) - start + 1 };
      }));
    }
  } finally {
    await r.close();
  }
  return out;
}

/**
 * The entries of a pack (as packsOf gives them) that a flipped byte at stored position `at`
 * makes unreadable: the one holding it in a plain repository; in an encrypted one every entry
 * with a byte in the same sealed 64 KiB segment (the segment fails as a whole).
 */
export function entriesHitBy(entries: PackEntry[], at: number): PackEntry[] {
  if (!ENCRYPTED) return entries.filter((e) => at >= e.offset && at < e.offset + e.length);
  const segment = (q: number): number => Math.floor((q - FILE_NONCE_BYTES) / (SEGMENT_BYTES + GCM_TAG_BYTES));
  const hit = segment(at);
  return entries.filter((e) => segment(e.offset) <= hit && hit <= segment(e.offset + e.length - 1));
}

/**
 * Write `bytes` as repository file `name` (e.g. `locks/<id>`) the way snap stores it: sealed in an
 * encrypted repository (SNAP_TORTURE_ENCRYPTED), as they are in a plain one.
 */
export async function plantFile(repo: string, name: string, bytes: Buffer): Promise<void> {
  if (!ENCRYPTED) {
    fs.mkdirSync(path.dirname(path.join(repo, name)), { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(repo, name), bytes, { mode: 0o600 });
    return;
  }
  const { Repository } = await import('../../src/repo/repository.js');
  const r = await Repository.openStorage(repo, { sink: {}, ...ENC_OPEN });
  try {
    await r.backend.put(name, bytes);
  } finally {
    await r.backend.close();
  }
}

/** Where plaintext byte `p` of a sealed blob is stored (docs/format.md, "Format 2"). */
function sealedOffset(p: number): number {
  return FILE_NONCE_BYTES + p + Math.floor(p / SEGMENT_BYTES) * GCM_TAG_BYTES;
}

export function flipByte(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, offset);
  b[0] = b[0]! ^ 0x5a;
  fs.writeSync(fd, b, 0, 1, offset);
  fs.closeSync(fd);
}

let copies = 0;
/** A fresh copy of a fixture repository, beside it under `base`. */
export function copyRepo(base: string, repo: string): string {
  const dst = path.join(base, `copy-${copies++}`);
  fs.cpSync(repo, dst, { recursive: true });
  copyIndexCache(repo, dst);
  return dst;
}

/** Positions to fail at: the first, the last, and a seeded sample in between (k at most). */
export function faultPositions(rng: Rng, count: number, k: number): number[] {
  const s = new Set<number>([1, count]);
  while (s.size < Math.min(k, count)) s.add(rng.int(1, count));
  return [...s].filter((n) => n >= 1).sort((a, b) => a - b);
}

/** Errors an operation may fail with when storage fails: clear, coded, never a raw or internal one. */
export const STORAGE_CODES = ['SNAP_IO', 'SNAP_NO_SPACE', 'SNAP_CORRUPT', 'SNAP_MISSING_OBJECT', 'SNAP_BAD_CONFIG'];

export function expectClearError(e: unknown, what: string): void {
  if (!(e instanceof SnapError)) throw new Error(`${what}: failed with a non-SnapError: ${e instanceof Error ? e.stack : String(e)}`);
  expect(STORAGE_CODES, `${what}: ${e.code}: ${e.message}`).toContain(e.code);
  expect(e.message.length, what).toBeGreaterThan(10);
}

/**
 * Restore every listed snapshot of an open repository (in process) and compare it with what its
 * first tag says it was made from: nothing damaged, the tree exact. Returns the tags seen.
 */
export async function restoresExactly(r: Repository, src: string, wantOf: (tag: string) => Manifest, what: string): Promise<string[]> {
  const quiet = { warn: () => {}, info: () => {} };
  const tags: string[] = [];
  for (const s of await r.listSnapshots()) {
    const tag = s.tags[0]!;
    tags.push(tag);
    const target = tmpDir('snap-fault-restore-');
    const res = await restoreSnapshot(r, s, { target, asRoot: true, sink: quiet });
    expect(res.damaged, `${what}: snapshot ${tag} damaged`).toEqual([]);
    assertSameTree(wantOf(tag), manifest(restoredAt(target, src)), `${what}: snapshot ${tag}`);
    fs.rmSync(target, { recursive: true, force: true });
  }
  return tags;
}

/**
 * The A/B fixture of the damage and repair tests: snapshot A of one random tree, then snapshot B
 * (`snapshotsOfB` of them, a file of B touched between) of another whose files are unique (random
 * bytes, never copies of A's), so B's packs are B's alone and damage to them hits B, never A.
 */
export interface ABFixture {
  base: string;
  repo: string;
  srcA: string;
  srcB: string;
  wantA: Manifest;
  /** B's tree as its newest snapshot holds it. */
  wantB: Manifest;
  idA: string;
  /** B's snapshots, oldest first. */
  idsB: string[];
  /** Packs only B's snapshots use: the path in the repository (`rel`) and beside the fixture (`file`). */
  packsB: { id: string; rel: string; file: string; entries: PackEntry[]; type: 'blob' | 'tree' }[];
}

export interface ABSpec {
  files: number;
  dirs: number;
  maxFile: number;
  /** Folder name prefix under the run's temporary folder. */
  prefix?: string;
  /** Also a folder two levels deep in B with unique files of its own. */
  deepB?: boolean;
  /** Snapshots of B (default 1). */
  snapshotsOfB?: number;
}

export async function makeABFixture(rng: Rng, spec: ABSpec): Promise<ABFixture> {
  const base = tmpDir(spec.prefix);
  const repo = path.join(base, 'repo');
  const srcA = path.join(base, 'a');
  const srcB = path.join(base, 'b');
  await initSmallRepo(repo);
  const tree = { files: spec.files, dirs: spec.dirs, maxFile: spec.maxFile, symlinks: true };
  genTree(rng, srcA, tree);
  genTree(rng, srcB, tree);
  for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(srcB, `unique-${i}`), rng.bytes(rng.int(20_000, 120_000)));
  if (spec.deepB) {
    fs.mkdirSync(path.join(srcB, 'deep', 'er'), { recursive: true });
    for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(srcB, 'deep', 'er', `u-${i}`), rng.bytes(rng.int(5_000, 30_000)));
  }
  await cliOk(['--repo', repo, 'create', '--tag', 'A', srcA]);
  const before = await packsOf(repo);
  const times = spec.snapshotsOfB ?? 1;
  for (let i = 0; i < times; i++) {
    if (i > 0) fs.appendFileSync(path.join(srcB, 'unique-0'), 'more');
    await cliOk(['--repo', repo, 'create', '--tag', 'B', srcB]);
  }
  const after = await packsOf(repo);
  const snaps = await listSnapshots(repo);
  return {
    base, repo, srcA, srcB, wantA: manifest(srcA), wantB: manifest(srcB),
    idA: snaps.find((s) => s.tags[0] === 'A')!.id,
    idsB: snaps.filter((s) => s.tags[0] === 'B').map((s) => s.id),
    packsB: [...after]
      .filter(([id]) => !before.has(id))
      .map(([id, entries]) => {
        const rel = path.join('data', id.slice(0, 2), id);
        return { id, rel, file: path.join(repo, rel), entries, type: entries[0]!.type };
      }),
  };
}
