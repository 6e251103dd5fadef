// The repository lock protocol (src/repo/lock.ts) on S3 (a real radosgw), on Azure Blob (a real
// Azurite) and over SFTP (a real sshd): many holders from different "hosts" racing for an exclusive lock never hold it together,
// shared holders coexist, and an exclusive holder keeps shared ones out. On S3 the same holds with
// conditional writes turned off: the protocol writes lock objects under random names and then lists
// and checks, so it needs no If-None-Match (docs/format.md, "Locks on remote storage").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { SftpBackend } from '../src/backend/sftp.js';
import { systemClock } from '../src/core/clock.js';
import { isSnapError } from '../src/core/errors.js';
import type { HostInfo } from '../src/core/host.js';
import { RepoLock, type LockKind } from '../src/repo/lock.js';
import { type S3Target, s3Target } from './helpers/s3-target.js';
import { TestSshd, sshdMissing } from './helpers/sshd.js';
import { TestAzurite, azuriteMissing } from './helpers/azurite.js';
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { randomBytes } from 'node:crypto';
import { Repository } from '../src/repo/repository.js';

let target: S3Target;
let sshd: TestSshd | undefined;
let azurite: TestAzurite | undefined;
beforeAll(async () => {
  target = await s3Target('e2e-locks');
  if (!sshdMissing()) sshd = await TestSshd.start();
  if (!azuriteMissing()) {
    azurite = await TestAzurite.start({ inMemory: true });
    await azurite.backend('locks').ensureContainer();
  }
}, 900_000);
afterAll(async () => {
  await sshd?.close();
  await azurite?.close();
});

const host = (name: string, pid: number): HostInfo => ({ hostname: name, username: 'u', pid, uid: 1000, isAlive: () => true });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `n` holders on `n` hosts take `kind` locks at once, each holding it a moment; reports the most exclusive holders at once and whether one ever held beside a shared holder. */
async function race(b: Backend, n: number, kinds: (i: number) => LockKind): Promise<{ maxExclusive: number; sharedWithExclusive: boolean; acquired: number }> {
  let exclusive = 0;
  let shared = 0;
  let maxExclusive = 0;
  let sharedWithExclusive = false;
  let acquired = 0;
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const kind = kinds(i);
      const lock = await RepoLock.acquire(b, { kind, command: kind === 'exclusive' ? 'gc' : 'create', host: host(`h${i}`, 100 + i), clock: systemClock, sink: {}, waitMs: 60_000, retryMs: 30 });
      acquired++;
      if (kind === 'exclusive') exclusive++;
      else shared++;
      maxExclusive = Math.max(maxExclusive, exclusive);
      if (exclusive > 0 && shared > 0) sharedWithExclusive = true;
      await sleep(40);
      if (kind === 'exclusive') exclusive--;
      else shared--;
      await lock.release();
    }),
  );
  return { maxExclusive, sharedWithExclusive, acquired };
}

/** Exclusive holders never overlap, nor with shared ones, and every lock is gone afterwards. */
async function expectLocksNeverOverlap(b: Backend): Promise<void> {
  const r = await race(b, 6, (i) => (i % 3 === 0 ? 'exclusive' : 'shared'));
  expect(r).toEqual({ maxExclusive: 1, sharedWithExclusive: false, acquired: 6 });
  const all = await race(b, 5, () => 'exclusive');
  expect(all).toEqual({ maxExclusive: 1, sharedWithExclusive: false, acquired: 5 });
  const left: string[] = [];
  for await (const x of b.list('locks/')) left.push(x.name);
  expect(left).toEqual([]);
}

function s3(conditionalWrites: boolean): Backend {
  return target.backend({ conditionalWrites, retry: { attempts: 5, baseDelayMs: 20, maxDelayMs: 400 } });
}

describe('repository locks on remote storage', () => {
  for (const conditional of [true, false]) {
    it(`S3${conditional ? '' : ' without conditional writes'}: exclusive holders never overlap, nor with shared ones`, async (ctx) => {
      if (typeof target.info === 'string') return ctx.skip();
      const b = s3(conditional);
      try {
        await expectLocksNeverOverlap(b);
      } finally {
        await b.close();
      }
    });
  }

  it('S3: a held exclusive lock makes another host wait and then fail with SNAP_LOCKED naming it', async (ctx) => {
    if (typeof target.info === 'string') return ctx.skip();
    const b = s3(true);
    try {
      const gc = await RepoLock.acquire(b, { kind: 'exclusive', command: 'gc', host: host('nas', 1), clock: systemClock, sink: {}, waitMs: 0 });
      const err = await RepoLock.acquire(b, { kind: 'shared', command: 'create', host: host('laptop', 2), clock: systemClock, sink: {}, waitMs: 300, retryMs: 50 }).catch((e: unknown) => e);
      expect(isSnapError(err, 'SNAP_LOCKED')).toBe(true);
      expect((err as Error).message).toMatch(/exclusive lock of 'gc' \(pid 1 on nas/);
      await gc.release();
    } finally {
      await b.close();
    }
  });

  it('Azure: exclusive holders never overlap, nor with shared ones (If-None-Match: * creates)', async (ctx) => {
    if (!azurite) return ctx.skip();
    const b = azurite.backend('locks');
    expect(await b.capabilities()).toEqual({ atomicPutIfAbsent: true });
    await expectLocksNeverOverlap(b);
  });

  it('SFTP: exclusive holders never overlap, nor with shared ones', async (ctx) => {
    if (!sshd) return ctx.skip();
    const b = new SftpBackend(sshd.location(path.join(sshd.dir, 'locks-repo')), { sshCommand: sshd.sshCommand() });
    try {
      const r = await race(b, 6, (i) => (i % 3 === 0 ? 'exclusive' : 'shared'));
      expect(r).toEqual({ maxExclusive: 1, sharedWithExclusive: false, acquired: 6 });
    } finally {
      await b.close();
    }
  });
});

describe('two snap init at once on one location', () => {
  // Each init in its own process would do the same; in-process the two interleave their HEAD, key
  // file and config PUTs on the event loop, so both find the place empty before either writes.
  async function racingInits(conditional: boolean, encrypted: boolean): Promise<{ made: Repository[]; refused: unknown[]; prefix: string }> {
    const prefix = `init-race-${randomBytes(4).toString('hex')}`;
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-init-race-'));
    const results = await Promise.allSettled(
      [0, 1].map((i) =>
        Repository.init(`race-${i}`, {
          host: host(`h${i}`, 200 + i),
          sink: {},
          remote: { backend: target.backend({ prefix, conditionalWrites: conditional }), cacheRoot: path.join(cache, String(i)) },
          encrypt: encrypted ? { password: Buffer.from(`password ${i}`), scrypt: { N: 1024, r: 8, p: 1 } } : undefined,
          indexCache: path.join(cache, String(i), 'index'),
          initSettleMs: 500,
        }),
      ),
    );
    return {
      made: results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])),
      refused: results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : [])),
      prefix,
    };
  }

  for (const conditional of [true, false]) {
    for (const encrypted of [false, true]) {
      it(`S3${conditional ? '' : ' without conditional writes'}, ${encrypted ? 'encrypted' : 'plain'}: one repository is made, the other init fails with SNAP_REPO_EXISTS`, async (ctx) => {
        if (typeof target.info === 'string') return ctx.skip();
        const { made, refused, prefix } = await racingInits(conditional, encrypted);
        try {
          expect(made.length, refused.map(String).join('\n')).toBe(1);
          expect(refused.length).toBe(1);
          expect(isSnapError(refused[0], 'SNAP_REPO_EXISTS'), String(refused[0])).toBe(true);
          // The one made is whole: its config is the one stored, and only its key file is left.
          const b = target.backend({ prefix });
          try {
            const stored = new Map<string, number>();
            for await (const x of b.list('keys/')) stored.set(x.name, x.size);
            expect(stored.size).toBe(encrypted ? 1 : 0);
            const config = JSON.parse((await b.get('config')).toString()) as { id: string };
            expect(config.id).toBe(made[0]!.config.id);
          } finally {
            await b.close();
          }
        } finally {
          for (const r of made) await r.close();
        }
      });
    }
  }
});
