// End to end through the built CLI against a real Ceph radosgw (test/helpers/radosgw.ts): a
// repository on S3 from init to gc, its index in the local cache folder (deleted and rebuilt,
// caught up after other clients wrote), several clients backing up into one bucket at once, and a
// gateway killed in the middle of a backup.
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snap, snapAsync, tmpDir } from './helpers/cli.js';
import { type S3Target, s3Target } from './helpers/s3-target.js';
import { CephCluster, type Gateway } from './helpers/radosgw.js';
import { type ConnFault, TcpFaultProxy } from './helpers/tcp-fault-proxy.js';
import { expectBackupThroughRestart, expectCachesCatchUp, expectClientCatchesUpBesideOwner, expectCheckClean, expectConcurrentBackupsWithGc, expectInitToGc, expectRestoresExactly, listSnapshots, makeSource, ok } from './helpers/remote-e2e.js';

const BUCKET = 'e2e-remote';
let target: S3Target;

beforeAll(async () => {
  target = await s3Target(BUCKET);
}, 900_000);

const unavailable = (): string | undefined => (typeof target?.info === 'string' ? target.info : undefined);

/** The environment of one client: the owner's keys, and a cache folder of its own. */
function client(endpointKeys?: { accessKeyId: string; secretAccessKey: string }): Record<string, string> {
  if (typeof target.info === 'string') throw new Error(target.info);
  const keys = endpointKeys ?? target.info.account;
  const home = tmpDir('snap-client-');
  return {
    AWS_ACCESS_KEY_ID: keys.accessKeyId,
    AWS_SECRET_ACCESS_KEY: keys.secretAccessKey,
    AWS_REGION: target.info.account.region,
    XDG_CACHE_HOME: path.join(home, 'cache'),
    HOME: home,
  };
}

function newLocation(endpoint?: string): string {
  if (typeof target.info === 'string') throw new Error(target.info);
  return `s3:${endpoint ?? target.info.account.endpoint}/${BUCKET}/r-${randomBytes(6).toString('hex')}`;
}

describe('a repository on S3 (radosgw)', () => {
  it('init (encrypted unless --no-encryption: without a password it is refused), create, list, restore, check, forget, gc', (ctx) => {
    if (unavailable()) return ctx.skip();
    expectInitToGc(newLocation(), client());
  });

  it('a missing bucket or location is SNAP_NO_REPO; wrong keys are SNAP_PERMISSION; init makes a missing bucket', (ctx) => {
    if (unavailable()) return ctx.skip();
    const env = client();
    const none = snap(['--repo', newLocation(), 'list'], { env });
    expect([none.code, none.stderr]).toEqual([1, expect.stringMatching(/no repository at s3:.*SNAP_NO_REPO/)]);
    const repo = newLocation();
    ok(['--repo', repo, 'init', '--no-encryption'], env);
    const bad = snap(['--repo', repo, 'list'], { env: { ...env, AWS_SECRET_ACCESS_KEY: 'wrong' } });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/permission denied.*SNAP_PERMISSION/);
    expect(bad.stderr).not.toContain('wrong');
    // init makes a bucket that does not exist yet.
    const fresh = `s3:${(target.info as { account: { endpoint: string } }).account.endpoint}/snap-new-${randomBytes(4).toString('hex')}/repo`;
    ok(['--repo', fresh, 'init', '--no-encryption'], env);
    expect(listSnapshots(fresh, env)).toEqual([]);
  });

  it('the cache index is rebuilt when deleted, and catches up with what other clients wrote and removed', (ctx) => {
    if (unavailable()) return ctx.skip();
    expectCachesCatchUp(newLocation(), client(), client());
  });

  it('a command beside a long-running owner of its cache index sees what other hosts wrote', async (ctx) => {
    if (unavailable()) return ctx.skip();
    await expectClientCatchesUpBesideOwner(newLocation(), client(), client());
  }, 300_000);

  it('two clients back up into one repository at once while a third runs forget and gc', async (ctx) => {
    if (unavailable()) return ctx.skip();
    await expectConcurrentBackupsWithGc(newLocation(), [client(), client(), client()], 6 * 1024 * 1024);
  }, 400_000);

  describe('the gateway killed in the middle of a backup', () => {
    let gw: Gateway | undefined;
    afterAll(async () => {
      await gw?.stop(true);
    });

    it('snap retries until it is back; check is clean and every listed snapshot restores exactly', async (ctx) => {
      if (unavailable() || typeof target.info === 'string') return ctx.skip();
      // A gateway of this test's own on the shared cluster: the other files' gateway runs on.
      gw = await CephCluster.attach(target.info.clusterDir).startGateway(`e2e-${randomBytes(3).toString('hex')}`);
      const repo = newLocation(gw.endpoint);
      const viewer = target.backend({ prefix: repo.slice(repo.lastIndexOf('/') + 1) });
      await expectBackupThroughRestart(repo, client(), viewer, async () => {
        await gw!.stop(); // SIGKILL, in the middle of the next pack's upload
        await new Promise((r) => setTimeout(r, 1000));
        await gw!.start();
      });
      await viewer.close();
    }, 400_000);
  });

  it('connections reset and dropped at seeded points: the backup is retried through them and restores exactly', async (ctx) => {
    if (unavailable() || typeof target.info === 'string') return ctx.skip();
    const port = Number(new URL(target.info.account.endpoint).port);
    // mulberry32: the same faults for the same SNAP_TEST_SEED.
    let seed = (Number(process.env.SNAP_TEST_SEED) || 1313) >>> 0;
    const random = (): number => {
      seed = (seed + 0x6d2b79f5) >>> 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    // Two of every three connections break: reset or closed, going up somewhere in the first MB
    // (a request's headers, a pack's body) or down in the first 2 KB (an answer's headers).
    const plan = (conn: number): ConnFault | undefined => {
      if (conn % 3 === 0) return undefined;
      const kind = random() < 0.5 ? 'reset' : 'drop';
      return random() < 0.6 ? { kind, direction: 'up', afterBytes: Math.floor(random() * 1_000_000) } : { kind, direction: 'down', afterBytes: Math.floor(random() * 2000) };
    };
    const proxy = await TcpFaultProxy.start(port, plan);
    try {
      const env = client();
      const path_ = `${BUCKET}/f-${randomBytes(6).toString('hex')}`;
      const direct = `s3:${target.info.account.endpoint}/${path_}`;
      const faulty = `s3:http://127.0.0.1:${proxy.port}/${path_}`;
      ok(['--repo', direct, 'init', '--no-encryption'], env);
      const src = makeSource('faults', 6 * 1024 * 1024);
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const p = snapAsync(['--repo', faulty, 'create', src], { env });
        let stderr = '';
        p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        p.stdout.resume();
        p.on('close', (code) => resolve({ code, stderr }));
      });
      expect(proxy.fired.length, `${proxy.connections} connections`).toBeGreaterThan(0);
      expect([r.code, r.stderr]).toEqual([0, expect.anything()]);
      expectCheckClean(direct, env);
      expectRestoresExactly(direct, 'latest', src, env);
    } finally {
      await proxy.close();
    }
  }, 300_000);
});
