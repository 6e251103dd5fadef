// Faults and long-running commands on a repository on S3, against a real Ceph radosgw
// (test/helpers/radosgw.ts), through the built CLI:
// - snap killed (kill -9) at seeded points while a backup of 256 MiB uploads its packs: the pack
//   being sent is cut off mid-body (the fault proxy holds the rest back, then snap is killed), and
//   nothing of it is visible under its name; check --read-data finds no damage, the killed
//   process's lock is removed by the next command on this host (docs/format.md, "Locks"), and a
//   new backup completes and restores exactly;
// - the gateway killed (SIGKILL) at seeded points of a gc (its writes and deletes), and restarted:
//   gc rides through a short outage, and fails with SNAP_REMOTE naming the location when the
//   gateway stays down longer than its retries; either way nothing referenced is lost, and the
//   next gc completes;
// - `watch`, `schedule` and `ui` on an S3 repository;
// - a lock object that cannot be read (the server failing past every retry) is not taken for a
//   released one.
// SNAP_TEST_SEED replays the kill points.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { systemClock } from '../src/core/clock.js';
import type { HostInfo } from '../src/core/host.js';
import { RepoLock } from '../src/repo/lock.js';
import { packIdFromName } from '../src/store/pack.js';
import { snap, tmpDir } from './helpers/cli.js';
import { FaultProxy, type ProxyRequest } from './helpers/fault-proxy.js';
import { CephCluster, type Gateway } from './helpers/radosgw.js';
import { expectCheckClean, expectRestoresExactly, listSnapshots, ok, runSnap, sleep, startSnap, until } from './helpers/remote-e2e.js';
import { Rng } from './helpers/rng.js';
import { type S3Target, pendingUploads, s3Target } from './helpers/s3-target.js';
import { login, request, startUi } from './helpers/ui-server.js';
import { killWatchers, nth, startWatch } from './helpers/watch-run.js';

const BUCKET = 'remote-faults';
const SEED = Number(process.env.SNAP_TEST_SEED) || 20261203;
const PASSWORD = 'remote faults password';
let target: S3Target;

beforeAll(async () => {
  target = await s3Target(BUCKET);
}, 900_000);

afterEach(killWatchers);

const unavailable = (): string | undefined => (typeof target?.info === 'string' ? target.info : undefined);

function account(): { endpoint: string; accessKeyId: string; secretAccessKey: string; region: string } {
  if (typeof target.info === 'string') throw new Error(target.info);
  return target.info.account;
}

/** One client: the owner's keys in the environment, a cache folder and home of its own. */
function client(extra: Record<string, string> = {}): Record<string, string> {
  const a = account();
  const home = tmpDir('snap-rf-client-');
  return {
    AWS_ACCESS_KEY_ID: a.accessKeyId,
    AWS_SECRET_ACCESS_KEY: a.secretAccessKey,
    AWS_REGION: a.region,
    XDG_CACHE_HOME: path.join(home, 'cache'),
    HOME: home,
    ...extra,
  };
}

/** An encrypted repository's client (a cheap KDF for tests). */
function encryptedClient(): Record<string, string> {
  return client({ SNAP_PASSWORD: PASSWORD, SNAP_KDF_SCRYPT_N: '1024' });
}

function newPrefix(tag: string): string {
  return `${tag}-${randomBytes(6).toString('hex')}`;
}

function locationOf(prefix: string, endpoint = account().endpoint): string {
  return `s3:${endpoint}/${BUCKET}/${prefix}`;
}

async function names(b: Backend, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const x of b.list(prefix)) out.push(x.name);
  return out.sort();
}

/** `n` files of random bytes from `rng` (incompressible: every byte is uploaded). */
function randomTree(rng: Rng, dir: string, sizes: number[]): string {
  fs.mkdirSync(dir, { recursive: true });
  sizes.forEach((size, i) => {
    const fd = fs.openSync(path.join(dir, `f${String(i).padStart(2, '0')}.bin`), 'w');
    for (let left = size; left > 0; left -= 1 << 20) fs.writeSync(fd, rng.bytes(Math.min(left, 1 << 20)));
    fs.closeSync(fd);
  });
  return dir;
}


const MiB = 1 << 20;

describe('snap killed (kill -9) in the middle of uploads to S3', () => {
  it('at seeded points of a 256 MiB backup, mid-body of a pack: no partial pack under its name, check finds no damage, the stale lock goes, a new backup restores exactly', async (ctx) => {
    if (unavailable()) return ctx.skip();
    const rng = new Rng(SEED);
    const a = account();
    const env = client();
    const prefix = newPrefix('kill');
    const direct = locationOf(prefix);
    const viewer = target.backend({ prefix });
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: Number(new URL(a.endpoint).port) });
    const viaProxy = locationOf(prefix, proxy.endpoint);
    try {
      ok(['--repo', direct, 'init', '--no-encryption'], env);
      const src = randomTree(rng.fork(), path.join(tmpDir('snap-rf-src-'), 'big'), [96 * MiB, 64 * MiB, 48 * MiB, 32 * MiB, 16 * MiB]);
      const verified = new Set<string>();
      for (let round = 1; round <= 3; round++) {
        // The n-th pack this backup sends is held after `after` of its bytes, then snap is killed.
        const n = rng.int(1, 3);
        const after = rng.int(4096, 12 * MiB);
        let puts = 0;
        let cut: ProxyRequest | undefined;
        proxy.rule = (r) => {
          if (r.method !== 'PUT' || !r.path.includes('/data/') || ++puts !== n) return undefined;
          cut = r;
          return { kind: 'stall', dir: 'up', after };
        };
        const run = startSnap(['--repo', viaProxy, 'create', src], env);
        await until(`PUT number ${n} of a pack (round ${round}); stderr: ${run.stderr()}`, 300_000, () => cut !== undefined || run.child.exitCode !== null);
        expect(run.child.exitCode, `the backup ended before its pack number ${n} was sent: ${run.stderr()}`).toBeNull();
        await sleep(rng.int(200, 1000)); // the held part is on its way; snap may be sending other requests
        run.child.kill('SIGKILL');
        await run.exited;
        expect(run.child.signalCode).toBe('SIGKILL');
        proxy.rule = () => undefined;

        // The pack cut off mid-body is not there under its name (nor anywhere else); every pack
        // that is there is whole: its bytes hash to its name.
        const cutName = decodeURIComponent(cut!.path.split('?')[0]!).slice(`/${BUCKET}/${prefix}/`.length);
        expect(cutName).toMatch(/^data\/[0-9a-f]{2}\/[0-9a-f]{64}$/);
        await sleep(500); // the gateway has seen the connection close
        expect(await viewer.stat(cutName), `${cutName} after the cut in round ${round}`).toBeUndefined();
        for (const name of await names(viewer, 'data/')) {
          if (verified.has(name)) continue;
          const id = packIdFromName(name);
          expect(id, name).toBeDefined();
          expect(createHash('sha256').update(await viewer.get(name)).digest('hex'), `${name} is whole`).toBe(id);
          verified.add(name);
        }
        expect(await pendingUploads(target, `${prefix}/`)).toEqual([]);

        // The killed process's lock is still there; the next command on this host removes it (its
        // pid is gone: docs/format.md, "Locks") and finds no damage, only leftovers gc removes.
        expect(await names(viewer, 'locks/')).toHaveLength(1);
        const c = snap(['--repo', direct, 'check', '--read-data'], { env });
        expect([c.code, c.stderr]).toEqual([0, expect.stringMatching(/removed a stale lock: .*pid \d+.*no longer running/)]);
        expect(c.stdout).not.toMatch(/^damage:/m);
        expect(await names(viewer, 'locks/')).toEqual([]);
        expect(listSnapshots(direct, env)).toEqual([]);
      }
      expect(verified.size).toBeGreaterThan(0);
      // A new backup completes (storing only what is missing) and restores exactly; gc then
      // removes nothing it needs, and check is clean.
      ok(['--repo', direct, 'create', src], env);
      expect(listSnapshots(direct, env)).toHaveLength(1);
      expectRestoresExactly(direct, 'latest', src, env);
      ok(['--repo', direct, 'gc'], env);
      expectCheckClean(direct, env);
      expectRestoresExactly(direct, 'latest', src, client());
    } finally {
      await proxy.close();
      await viewer.close();
    }
  }, 900_000);
});

/** Copy every object under one prefix to another (a prepared repository, used once per kill point). */
async function copyPrefix(from: Backend, to: Backend): Promise<void> {
  for (const name of await names(from, '')) await to.put(name, await from.get(name));
}

describe('the gateway killed (SIGKILL) in the middle of gc', () => {
  let gw: Gateway | undefined;
  let proxy: FaultProxy | undefined;
  afterAll(async () => {
    await proxy?.close();
    await gw?.stop(true);
  });

  it('at seeded writes and deletes of gc: a short outage is ridden through; a long one fails with SNAP_REMOTE naming the location; nothing referenced is lost and the next gc completes', async (ctx) => {
    if (unavailable() || typeof target.info === 'string') return ctx.skip();
    const rng = new Rng(SEED + 2);
    // A gateway of this test's own on the shared cluster (the other files' gateway runs on), and
    // the fault proxy in front of it, which sees each request and says when to kill the gateway.
    gw = await CephCluster.attach(target.info.clusterDir).startGateway(`gc-${randomBytes(3).toString('hex')}`);
    proxy = await FaultProxy.start({ host: '127.0.0.1', port: gw.port });
    const env = encryptedClient();

    // Three backups sharing files; the first forgotten: gc rewrites the packs it shared with the
    // others, deletes what only it used, writes an index file for the new packs, compacts.
    const base = tmpDir('snap-rf-gc-');
    const treeRng = rng.fork();
    const srcA = randomTree(treeRng, path.join(base, 'a'), Array.from({ length: 20 }, () => MiB + treeRng.int(0, 512 * 1024)));
    const srcB = path.join(base, 'b');
    const srcC = path.join(base, 'c');
    fs.mkdirSync(srcB);
    fs.mkdirSync(srcC);
    const files = fs.readdirSync(srcA).sort();
    files.forEach((f, i) => {
      if (i % 2 === 0) fs.copyFileSync(path.join(srcA, f), path.join(srcB, f));
      if (i % 3 === 0) fs.copyFileSync(path.join(srcA, f), path.join(srcC, f));
    });
    randomTree(treeRng, path.join(srcB, 'new'), [3 * MiB, 200_000]);
    randomTree(treeRng, path.join(srcC, 'new'), [2 * MiB]);
    const prepared = newPrefix('gc-prepared');
    const repo0 = locationOf(prepared, gw.endpoint);
    ok(['--repo', repo0, 'init'], env);
    ok(['--repo', repo0, 'create', srcA], env);
    ok(['--repo', repo0, 'create', srcB], env);
    ok(['--repo', repo0, 'create', srcC], env);
    ok(['--repo', repo0, 'forget', listSnapshots(repo0, env).find((s) => s.paths[0] === srcA)!.id], env);
    const preparedStore = target.backend({ prefix: prepared });

    /** A copy of the prepared repository, its location through the proxy, and a client whose cache knows it. */
    const fresh = async (tag: string): Promise<{ prefix: string; repo: string; env: Record<string, string> }> => {
      const prefix = newPrefix(tag);
      const store = target.backend({ prefix });
      await copyPrefix(preparedStore, store);
      await store.close();
      const e = encryptedClient();
      const repo = locationOf(prefix, proxy!.endpoint);
      expect((await runSnap(['--repo', repo, 'list'], e)).code).toBe(0);
      return { prefix, repo, env: e };
    };
    const mutating = (r: ProxyRequest): string | undefined => {
      if (r.method !== 'PUT' && r.method !== 'DELETE') return undefined;
      const m = /\/(data|packindex)\//.exec(r.path);
      return m ? `${r.method} ${m[1]}` : undefined;
    };

    // A gc without faults makes every kind of write and delete the kill points pick from.
    const dry = await fresh('gc-dry');
    const steps: string[] = [];
    proxy.rule = (r) => {
      const m = mutating(r);
      if (m) steps.push(m);
      return undefined;
    };
    const full = await runSnap(['--repo', dry.repo, 'gc', '--max-unused', '0%'], dry.env);
    expect([full.code, full.stderr]).toEqual([0, expect.anything()]);
    expect(new Set(steps)).toEqual(new Set(['PUT data', 'PUT packindex', 'DELETE data', 'DELETE packindex']));

    /** After a gc stopped by the gateway: nothing referenced is lost, and the next gc completes. */
    const expectIntact = async (p: { repo: string; env: Record<string, string> }, what: string): Promise<void> => {
      for (const e of [p.env, encryptedClient()]) {
        const c = await runSnap(['--repo', p.repo, 'check', '--read-data'], e);
        expect([c.code, c.stderr], `check after ${what}`).toEqual([0, expect.anything()]);
      }
      const left = listSnapshots(p.repo.replace(proxy!.endpoint, gw!.endpoint), p.env);
      expect(left.map((s) => s.paths[0]).sort(), what).toEqual([srcB, srcC].sort());
      const again = await runSnap(['--repo', p.repo, 'gc'], p.env);
      expect([again.code, again.stderr], `gc after ${what}`).toEqual([0, expect.anything()]);
      const direct = p.repo.replace(proxy!.endpoint, gw!.endpoint);
      const other = encryptedClient();
      for (const s of listSnapshots(direct, other)) expectRestoresExactly(direct, s.id, s.paths[0]!, other);
      expectCheckClean(direct, other);
    };

    // Kill points: the first request of three of the four kinds, in a seeded order (the fourth is
    // left out to bound the test's time); the first outage lasts longer than snap's retries (their
    // waits add up to 72 s at most: DEFAULT_RETRY in src/backend/retry.ts), the next ones 2 s.
    const kinds = rng.shuffle(['PUT data', 'DELETE data', 'PUT packindex', 'DELETE packindex']);
    for (const [i, kind] of kinds.slice(0, 3).entries()) {
      const long = i === 0;
      const p = await fresh(`gc-kill-${i}`);
      let killed: Promise<void> | undefined;
      proxy.rule = (r) => {
        if (killed || mutating(r) !== kind) return undefined;
        killed = gw!.stop(); // SIGKILL while this request is held back
        return { kind: 'delay', ms: 500 };
      };
      const run = startSnap(['--repo', p.repo, 'gc', '--max-unused', '0%'], p.env);
      await until(`gc's first ${kind}`, 120_000, () => killed !== undefined || run.child.exitCode !== null);
      expect(killed, `gc ended before its first ${kind}: ${run.stderr()}`).toBeDefined();
      await killed;
      await sleep(long ? 80_000 : 2000);
      await gw.start();
      const code = await run.exited;
      proxy.rule = () => undefined;
      if (long) {
        expect([code, run.stderr()], `gc with the gateway down from its first ${kind}`).toEqual([1, expect.stringContaining('[SNAP_REMOTE]')]);
        expect(run.stderr()).toContain(locationOf(p.prefix, proxy.endpoint));
        expect(run.stderr()).not.toMatch(/\n\s+at /); // no stack trace
      } else expect([code, run.stderr()], `gc with the gateway restarted 2 s after its first ${kind}`).toEqual([0, expect.anything()]);
      await expectIntact(p, `the gateway killed at gc's first ${kind} (${long ? 'down 80 s' : 'down 2 s'})`);
    }
    await preparedStore.close();
  }, 900_000);
});

describe('watch on an S3 repository', () => {
  it('snap watch --repo s3:... backs up an edit into a new snapshot', async (ctx) => {
    if (unavailable()) return ctx.skip();
    const env = encryptedClient();
    const repo = locationOf(newPrefix('watch'));
    ok(['--repo', repo, 'init'], env);
    const src = path.join(tmpDir('snap-rf-watch-'), 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'notes.txt'), 'first\n');
    const w = startWatch(repo, [src, '--debounce', '500ms', '--max-interval', '1h'], env);
    const s1 = await nth(w, 1, 60_000);
    expect(s1.reason).toBe('start');
    fs.writeFileSync(path.join(src, 'notes.txt'), 'first\nand an edit\n');
    const s2 = await nth(w, 2, 60_000);
    expect(s2.reason).toBe('changes');
    const cat = snap(['--repo', repo, 'cat', s2.id!, path.join(src, 'notes.txt')], { env });
    expect([cat.code, cat.stderr]).toEqual([0, expect.anything()]);
    expect(cat.stdout).toBe('first\nand an edit\n');
    expect(listSnapshots(repo, env).map((s) => s.id).sort()).toEqual([s1.id, s2.id].sort());
    w.child.kill('SIGTERM');
    expect((await w.exited).code, w.stderr()).toBe(0);
    expectCheckClean(repo, env);
  }, 180_000);
});

describe('schedule and ui on an S3 repository', () => {
  const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

  it('schedule add --print: units systemd-analyze verify accepts, no secret in them; the crontab line backs up with credentials from ~/.aws/credentials', async (ctx) => {
    if (unavailable()) return ctx.skip();
    const a = account();
    const base = tmpDir('snap-rf-schedule-');
    const pwFile = path.join(base, 'password');
    fs.writeFileSync(pwFile, `${PASSWORD}\n`, { mode: 0o600 });
    const env = client({ SNAP_KDF_SCRYPT_N: '1024' });
    const repo = locationOf(newPrefix('schedule'));
    ok(['--repo', repo, '--password-file', pwFile, 'init'], env);
    const src = path.join(base, 'docs');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'letter.txt'), 'scheduled on S3\n');
    // systemctl --user reaches no manager from here: nothing is enabled for real.
    const run = path.join(base, 'run');
    fs.mkdirSync(run, { mode: 0o700 });
    const isolated = { ...env, XDG_CONFIG_HOME: path.join(base, 'config'), XDG_RUNTIME_DIR: run, DBUS_SESSION_BUS_ADDRESS: `unix:path=${path.join(run, 'no-bus')}` };
    const secrets = [a.accessKeyId, a.secretAccessKey, PASSWORD];

    const p = snap(['--repo', repo, '--password-file', pwFile, '--json', 'schedule', 'add', 'nightly', '--every', 'daily', '--at', '02:00', '--via', 'systemd', '--print', '--', 'create', src], { env: isolated, cwd: base });
    expect(p.code, p.stderr).toBe(0);
    for (const s of secrets) expect(p.stdout + p.stderr).not.toContain(s);
    const printed = JSON.parse(p.stdout) as { files: { path: string; content: string }[]; credentials?: string };
    // Where the scheduled run finds its credentials is said, not written into the unit.
    expect(printed.credentials).toMatch(/AWS_ACCESS_KEY_ID.*~\/\.aws\/credentials/);
    const service = printed.files.find((f) => f.path.endsWith('.service'))!.content;
    expect(service).toContain(`"--repo" "${repo}"`);
    expect(service).toContain(`"--password-file" "${pwFile}"`);
    if (hasAnalyze) {
      const dir = path.join(base, 'units');
      fs.mkdirSync(dir);
      for (const f of printed.files) fs.writeFileSync(path.join(dir, path.basename(f.path)), f.content);
      const v = spawnSync('systemd-analyze', ['--user', 'verify', ...printed.files.map((f) => path.join(dir, path.basename(f.path)))], { encoding: 'utf8', env: { ...process.env, ...isolated } });
      expect(v.status, v.stderr).toBe(0);
      expect(v.stdout + v.stderr).toBe('');
    } else console.info('systemd-analyze is not installed: the units were not verified');

    // Text output says the same.
    const t = snap(['--repo', repo, '--password-file', pwFile, 'schedule', 'add', 'nightly', '--every', 'daily', '--via', 'systemd', '--print', '--', 'create', src], { env: isolated, cwd: base });
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/^# credentials: .*~\/\.aws\/credentials/m);
    // This shell's keys are in its environment only: a scheduled run would find none, and is told so.
    expect(t.stderr).toMatch(/^warning: a scheduled run would find no S3 credentials/m);
    for (const s of secrets) expect(t.stdout + t.stderr).not.toContain(s);

    // The crontab line, run by /bin/sh with only PATH and HOME (as cron runs it): the keys come
    // from ~/.aws/credentials, the password from its file; it makes a snapshot on S3.
    const c = snap(['--repo', repo, '--password-file', pwFile, '--json', 'schedule', 'add', 'n', '--every', 'hourly', '--via', 'cron', '--print', '--', 'create', src, '--tag', 'scheduled'], { env: isolated, cwd: base });
    expect(c.code, c.stderr).toBe(0);
    for (const s of secrets) expect(c.stdout + c.stderr).not.toContain(s);
    const line = (JSON.parse(c.stdout) as { crontab: string[] }).crontab.find((l) => !l.startsWith('#'))!;
    const command = line.split(' ').slice(5).join(' ');
    const home = path.join(base, 'home');
    fs.mkdirSync(path.join(home, '.aws'), { recursive: true });
    fs.writeFileSync(path.join(home, '.aws', 'credentials'), `[default]\naws_access_key_id = ${a.accessKeyId}\naws_secret_access_key = ${a.secretAccessKey}\n`, { mode: 0o600 });
    const r = spawnSync('/bin/sh', ['-c', command], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', HOME: home, SNAP_KDF_SCRYPT_N: '1024' } });
    expect(r.status, r.stderr).toBe(0);
    const snaps = listSnapshots(repo, { ...env, SNAP_PASSWORD: PASSWORD });
    expect(snaps.map((s) => [s.paths, s.tags])).toEqual([[[src], ['scheduled']]]);
  }, 180_000);

  it('snap ui --repo s3:... serves the timeline and a file download over HTTP', async (ctx) => {
    if (unavailable()) return ctx.skip();
    const env = encryptedClient();
    const repo = locationOf(newPrefix('ui'));
    ok(['--repo', repo, 'init'], env);
    const src = path.join(tmpDir('snap-rf-ui-'), 'src');
    fs.mkdirSync(src);
    const content = randomBytes(300_000);
    fs.writeFileSync(path.join(src, 'photo.bin'), content);
    ok(['--repo', repo, 'create', src], env);
    fs.writeFileSync(path.join(src, 'later.txt'), 'later\n');
    ok(['--repo', repo, 'create', src], env);
    const listed = listSnapshots(repo, env);
    const ui = await startUi(repo, [], env);
    try {
      const cookie = await login(ui);
      const get = (p: string) => request(ui.port, p, { headers: { cookie } });
      const snaps = await get('/api/snapshots');
      expect(snaps.status, snaps.body.toString()).toBe(200);
      expect((snaps.json() as { id: string }[]).map((s) => s.id).sort()).toEqual(listed.map((s) => s.id).sort());
      const days = await get('/api/calendar?by=day');
      expect(days.status, days.body.toString()).toBe(200);
      expect(JSON.stringify(days.json())).toContain(String(new Date().getFullYear()));
      const hex = (p: string): string => Buffer.from(p).toString('hex');
      const file = await get(`/api/cat?snapshot=${listed[0]!.id}&path_hex=${hex(path.join(src, 'photo.bin'))}`);
      expect(file.status, file.body.toString()).toBe(200);
      expect(file.headers['content-disposition']).toMatch(/^attachment; filename="photo\.bin"/);
      expect(file.body.equals(content)).toBe(true);
    } finally {
      expect(await ui.stop(), ui.stderr()).toBe(0);
    }
  }, 180_000);
});

describe('a lock that cannot be read', () => {
  it('does not pass for released: taking an exclusive lock beside it fails with SNAP_REMOTE (it was ignored before)', async (ctx) => {
    if (unavailable()) return ctx.skip();
    const prefix = newPrefix('lockread');
    const direct = target.backend({ prefix });
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: Number(new URL(account().endpoint).port) });
    const faulty = target.backend({ prefix, endpoint: proxy.endpoint });
    const host = (hostname: string, pid: number): HostInfo => ({ hostname, username: 'u', pid, uid: 1000, isAlive: () => true });
    try {
      // A backup on another host holds a shared lock.
      const backup = await RepoLock.acquire(direct, { kind: 'shared', command: 'create', host: host('laptop', 4242), clock: systemClock, sink: {}, waitMs: 10_000 });
      // Every read of a lock object through the proxy is cut (the listing still works), past
      // every retry: gc must not take the unreadable lock for one that was released.
      proxy.rule = (r) => (r.method === 'GET' && /\/locks\/[0-9a-f]{64}$/.test(r.path) ? { kind: 'drop' } : undefined);
      const gc = RepoLock.acquire(faulty, { kind: 'exclusive', command: 'gc', host: host('server', 7), clock: systemClock, sink: {}, waitMs: 10_000 });
      await expect(gc).rejects.toThrow(/SNAP_REMOTE|failed \d+ times/);
      await expect(gc.catch((e: unknown) => (e as { code?: string }).code)).resolves.toBe('SNAP_REMOTE');
      expect(proxy.faults.length).toBeGreaterThan(0);
      proxy.rule = () => undefined;
      // Only the backup's lock is left (gc removed its own), and it is still held.
      expect(await names(direct, 'locks/')).toHaveLength(1);
      await backup.release();
      expect(await names(direct, 'locks/')).toEqual([]);
    } finally {
      await proxy.close();
      await faulty.close();
      await direct.close();
    }
  }, 120_000);
});
