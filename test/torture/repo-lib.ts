// Shared parts of the damage, repair and fault tests: reading pack tables, damaging files,
// copying fixture repositories, fault positions and the errors a storage fault may cause.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'vitest';
import { SnapError } from '../../src/core/errors.js';
import { restoreSnapshot } from '../../src/ops/restore.js';
import type { Repository } from '../../src/repo/repository.js';
import { type Manifest, type Rng, assertSameTree, manifest, restoredAt, tmpDir } from './lib.js';

/** Every pack of a repository with its table of contents (one helper for all tests). */
export { packs as packsOf } from '../helpers/maint.js';

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
