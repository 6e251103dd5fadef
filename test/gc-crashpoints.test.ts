// gc stopped at EVERY storage write or delete in turn (a backend that fails the n-th mutating
// call, standing in for kill -9 at that instant): afterwards the repository must have no damage,
// every snapshot's objects must be present and verify, and the next gc must finish the job.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend, BackendCapabilities, BlobInfo } from '../src/backend/backend.js';
import { LocalBackend } from '../src/backend/local.js';
import { nullSink } from '../src/core/progress.js';
import { Repository } from '../src/repo/repository.js';
import { checkRepository } from '../src/ops/maintain/check.js';
import { executeGc, planGc } from '../src/ops/maintain/gc.js';
import { cleanupScratch, create, ok, scratchDir, smallRepo, writeFile } from './helpers/maint.js';
import { currentHost } from '../src/cli/host.js';

afterAll(cleanupScratch);

class CrashAt implements Backend {
  readonly location: string;
  calls = 0;
  constructor(private readonly inner: LocalBackend, private readonly failAt: number) {
    this.location = inner.location;
  }
  private step(): void {
    if (this.calls++ === this.failAt) throw new Error(`injected crash at mutating call ${this.failAt}`);
  }
  async put(name: string, data: Uint8Array): Promise<void> {
    this.step();
    return this.inner.put(name, data);
  }
  async putIfAbsent(name: string, data: Uint8Array): Promise<boolean> {
    this.step();
    return this.inner.putIfAbsent(name, data);
  }
  async putStream(name: string, source: AsyncIterable<Uint8Array>, size?: number): Promise<void> {
    this.step();
    return this.inner.putStream(name, source, size);
  }
  async delete(name: string): Promise<void> {
    this.step();
    return this.inner.delete(name);
  }
  getStream(name: string, range?: { offset: number; length: number }): AsyncIterable<Buffer> {
    return this.inner.getStream(name, range);
  }
  capabilities(): Promise<BackendCapabilities> {
    return this.inner.capabilities();
  }
  get(name: string): Promise<Buffer> {
    return this.inner.get(name);
  }
  getRange(name: string, offset: number, length: number): Promise<Buffer> {
    return this.inner.getRange(name, offset, length);
  }
  stat(name: string): Promise<BlobInfo | undefined> {
    return this.inner.stat(name);
  }
  exists(name: string): Promise<boolean> {
    return this.inner.exists(name);
  }
  list(prefix: string): AsyncIterable<BlobInfo> {
    return this.inner.list(prefix);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

async function gc(root: string, failAt: number): Promise<{ calls: number; error?: unknown }> {
  let b: CrashAt | undefined;
  const repo = await Repository.open(root, { host: currentHost(), sink: nullSink, backend: (r) => (b = new CrashAt(new LocalBackend(r), failAt)) });
  try {
    const o = { maxUnused: 0, sink: nullSink };
    await executeGc(repo, await planGc(repo, o), o);
    return { calls: b!.calls };
  } catch (error) {
    return { calls: b!.calls, error };
  } finally {
    await repo.close();
  }
}

async function damage(root: string): Promise<{ problems: string[]; unused: number; leftovers: number }> {
  const repo = await Repository.open(root, { host: currentHost(), sink: nullSink });
  try {
    const r = await checkRepository(repo, { sink: nullSink, readData: { kind: 'all' } });
    return { problems: r.problems.map((p) => p.message), unused: r.unusedObjects, leftovers: r.leftovers.length };
  } finally {
    await repo.close();
  }
}

describe('gc crash points', () => {
  it('a gc stopped at any storage write or delete leaves no damage, and the next gc completes', async () => {
    const base = scratchDir();
    const prepared = await smallRepo(path.join(base, 'prepared'), 64 * 1024);
    const src = path.join(base, 'src');
    for (let i = 0; i < 24; i++) writeFile(path.join(src, `f${i}`), randomBytes(30_000));
    const first = create(prepared, src);
    for (let i = 0; i < 24; i += 3) writeFile(path.join(src, `f${i}`), randomBytes(30_000));
    create(prepared, src);
    ok(['--repo', prepared, 'forget', first.id]);

    const dry = path.join(base, 'dry');
    fs.cpSync(prepared, dry, { recursive: true });
    const full = await gc(dry, -1);
    expect(full.error).toBeUndefined();
    expect(full.calls).toBeGreaterThan(4); // new packs written, old ones deleted

    for (let n = 0; n < full.calls; n++) {
      const root = path.join(base, `crash-${n}`);
      fs.cpSync(prepared, root, { recursive: true });
      const r = await gc(root, n);
      expect(String(r.error), `crash at call ${n}`).toMatch(/injected crash/);
      expect((await damage(root)).problems, `after a crash at call ${n}`).toEqual([]);
      const again = await gc(root, -1);
      expect(again.error, `gc after a crash at call ${n}`).toBeUndefined();
      expect(await damage(root), `after the next gc (crash at call ${n})`).toEqual({ problems: [], unused: 0, leftovers: 0 });
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
