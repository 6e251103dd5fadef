// Failure paths of remote repositories driven through the built CLI, against a real Ceph radosgw
// (a gateway of this file's own on the run's shared cluster, test/helpers/radosgw.ts) and a real
// OpenSSH server (test/helpers/sshd.ts), and (for Ctrl-C) a real Azurite (test/helpers/azurite.ts):
// - Ctrl-C (SIGINT) while the server is down and snap retries: the command stops at once with
//   SNAP_INTERRUPTED and exit 130 (not after a minute of retries per operation, with SNAP_REMOTE
//   and exit 1); once the server is back the next command removes the lock it left and check
//   --read-data finds the repository clean;
// - Ctrl-C while the server is frozen (SIGSTOP: its connections stay open, nothing answers): the
//   request in flight is ended at once and each cleanup gets a few seconds (STOPPED_REQUEST_MS),
//   not the minute of the idle timeout (S3), the 10 minutes of a try (Azure) or ssh's keepalives
//   (SFTP); the lock left behind is said; once the server resumes the next command works and
//   check is clean;
// - keys the S3 server refuses: the first request of every command is a HEAD (of the config, of
//   the bucket for init), whose 403 has no body; the message still says which (an unknown access
//   key, a wrong secret key), and never shows the secret;
// - the operation log's record, which fails for the same reason as the command (refused keys, a
//   server down when the command was stopped), adds no second message;
// - the local cache folder (the remote repository's index) on a small tmpfs, filled to leave from
//   400 to 800 KiB: wherever the index runs out of room, create exits 1 only when it saved no
//   snapshot; a full cache after the snapshot record is written (the files cache) is a warning
//   naming the index folder, exit 0, and check is clean;
// - a read-only cache folder that has no folder for the repository yet (this machine never opened
//   it): commands that only read work with the index in memory, as they do once the folder exists;
//   a backup fails with SNAP_READ_ONLY naming the folder.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestAzurite, azuriteMissing } from './helpers/azurite.js';
import { tmpDir } from './helpers/cli.js';
import { CephCluster, type Gateway } from './helpers/radosgw.js';
import { expectCheckClean, ok, type Running, runSnap, sleep, startSnap, until } from './helpers/remote-e2e.js';
import { type S3Target, s3Target } from './helpers/s3-target.js';
import { TestSshd, sshdMissing } from './helpers/sshd.js';

const BUCKET = 'remote-failures';
const PASSWORD = 'remote failures password';
const MiB = 1 << 20;

/**
 * How long a command stopped while its server is frozen may take to exit: each cleanup request
 * gets a few seconds (backend/retry.ts, STOPPED_REQUEST_MS); generous for a loaded 2-core machine.
 * Before the fix it took about two minutes (the 60 s idle timeout, then again for the cleanup).
 */
const FROZEN_BOUND_MS = 15_000;

/** A client's environment: a cache folder and home of its own, an encrypted repository's password (a cheap KDF for tests). */
function client(extra: Record<string, string> = {}): Record<string, string> {
  const home = tmpDir('snap-rfl-client-');
  return { XDG_CACHE_HOME: path.join(home, 'cache'), HOME: home, SNAP_PASSWORD: PASSWORD, SNAP_KDF_SCRYPT_N: '1024', ...extra };
}

/**
 * A backup whose data comes from standard input: 1 MiB is written, then (once the repository is
 * open and locked: `locked` says so) `down` stops the server, the input ends, the pack goes out and
 * fails, and snap is interrupted while it retries.
 */
async function interruptWhileServerDown(
  repo: string,
  env: Record<string, string>,
  locked: () => Promise<boolean>,
  down: () => Promise<void> | void,
  waitMs = 60_000,
): Promise<{ run: Running; code: number | null; ms: number }> {
  const run = startSnap(['--repo', repo, 'create', '--stdin', '--stdin-filename', 'dump.bin'], env, { stdin: true });
  run.child.stdin!.on('error', () => {}); // snap gone early: the test's expectations say why
  run.child.stdin!.write(randomBytes(MiB));
  await until('the backup to hold its lock', 30_000, locked);
  await down();
  run.child.stdin!.end(randomBytes(MiB));
  // The pack goes out once the input ends: its upload fails and is retried, for about a minute
  // (a frozen server: it waits for an answer that does not come).
  await sleep(2000);
  expect(run.child.exitCode).toBe(null);
  const t0 = Date.now();
  run.child.kill('SIGINT');
  // A snap that does not stop in time is killed, so a failing test does not wait for it.
  const code = await Promise.race([run.exited, sleep(waitMs).then(() => 'late' as const)]);
  const ms = Date.now() - t0;
  if (code === 'late') {
    run.child.kill('SIGKILL');
    await run.exited;
    throw new Error(`snap did not exit within ${waitMs / 1000} s of SIGINT; it said:\n${run.stderr()}`);
  }
  return { run, code, ms };
}

function expectStoppedAtOnce(r: { run: Running; code: number | null; ms: number }, withinMs = 5000): void {
  expect([r.code, r.run.stderr()]).toEqual([130, expect.stringContaining('create interrupted by SIGINT')]);
  expect(r.run.stderr()).toContain('[SNAP_INTERRUPTED]');
  expect(r.run.stderr()).not.toContain('SNAP_REMOTE');
  expect(r.run.stderr()).not.toContain('operation log'); // it could not be written either: no second message
  expect(r.run.stderr()).not.toMatch(/SNAP_INTERNAL|\n {4}at |Node\.js v/);
  expect(r.ms).toBeLessThan(withinMs);
}

/** The stopped command says that the lock it could not remove is left for the next command. */
function expectLockLeftSaid(r: { run: Running }): void {
  expect(r.run.stderr()).toMatch(/could not remove the repository lock locks\/\S+ .*the next command on this machine removes it/);
}

/**
 * The server back after a stop while it was down: the lock left behind is there and was said, the
 * next command removes it as stale, and check is clean.
 */
async function expectLockLeftThenRemoved(r: { run: Running }, repo: string, env: Record<string, string>, locks: () => Promise<string[]> | string[]): Promise<void> {
  expect(await locks()).toHaveLength(1); // the server was down: the lock could not be removed
  expectLockLeftSaid(r);
  const list = await runSnap(['--repo', repo, 'list'], env);
  expect([list.code, list.stderr]).toEqual([0, expect.stringContaining('removed a stale lock')]);
  expect(await locks()).toEqual([]);
  expectCheckClean(repo, env);
}

describe('Ctrl-C while the S3 server is down or frozen', () => {
  let target: S3Target;
  let gw: Gateway | undefined;
  beforeAll(async () => {
    target = await s3Target(BUCKET);
  }, 900_000);
  afterAll(async () => {
    gw?.thaw();
    await gw?.stop(true);
  });

  /** This file's gateway (started by the first test that needs it), a repository of its own on it, and its lock objects. */
  async function setup(name: string): Promise<{ gw: Gateway; repo: string; env: Record<string, string>; locks: () => Promise<string[]>; close: () => Promise<void> }> {
    if (typeof target.info === 'string') throw new Error(target.info);
    const a = target.info.account;
    gw ??= await CephCluster.attach(target.info.clusterDir).startGateway(`rfl-${randomBytes(3).toString('hex')}`);
    const prefix = `${name}-${randomBytes(6).toString('hex')}`;
    const repo = `s3:${gw.endpoint}/${BUCKET}/${prefix}`;
    const env = client({ AWS_ACCESS_KEY_ID: a.accessKeyId, AWS_SECRET_ACCESS_KEY: a.secretAccessKey, AWS_REGION: a.region });
    ok(['--repo', repo, 'init'], env);
    const store = target.backend({ prefix });
    const locks = async (): Promise<string[]> => {
      const out: string[] = [];
      for await (const b of store.list('locks/')) out.push(b.name);
      return out;
    };
    return { gw, repo, env, locks, close: () => store.close() };
  }

  it('stops the command at once (exit 130, SNAP_INTERRUPTED); the next command removes its lock and check is clean', async (ctx) => {
    if (typeof target.info === 'string') return ctx.skip();
    const { gw, repo, env, locks, close } = await setup('sigint');
    const r = await interruptWhileServerDown(repo, env, async () => (await locks()).length > 0, () => gw.stop());
    expectStoppedAtOnce(r);

    await gw.start();
    await expectLockLeftThenRemoved(r, repo, env, locks);
    await close();
  }, 120_000);

  it('frozen (SIGSTOP): the upload in flight is ended at once and the cleanup tried briefly; exit 130 within seconds, then all is well', async (ctx) => {
    if (typeof target.info === 'string') return ctx.skip();
    const { gw, repo, env, locks, close } = await setup('frozen');
    const r = await interruptWhileServerDown(repo, env, async () => (await locks()).length > 0, () => gw.freeze(), FROZEN_BOUND_MS + 5000).finally(() => gw.thaw());
    expectStoppedAtOnce(r, FROZEN_BOUND_MS);
    expectLockLeftSaid(r);
    await expectRecovers(repo, env, locks);
    await close();
  }, 120_000);
});

/**
 * After a frozen server resumed: the next command works (removing the lock the stopped one left,
 * unless the server, resumed, carried out the DELETE it had been sent meanwhile) and check is clean.
 */
async function expectRecovers(repo: string, env: Record<string, string>, locks: () => Promise<string[]>): Promise<void> {
  await locks(); // the server answers again
  await sleep(1000); // and has done what it was sent while frozen
  const left = (await locks()).length;
  const list = await runSnap(['--repo', repo, 'list'], env);
  expect([list.code, list.stderr]).toEqual([0, left > 0 ? expect.stringContaining('removed a stale lock') : expect.anything()]);
  expect(await locks()).toEqual([]);
  expectCheckClean(repo, env);
}

describe('S3 keys the server refuses, through the CLI', () => {
  let target: S3Target;
  beforeAll(async () => {
    target = await s3Target(BUCKET);
  }, 900_000);

  it('a wrong secret key, an unknown access key, a stranger: SNAP_PERMISSION saying which, for list and for init', async (ctx) => {
    if (typeof target.info === 'string') return ctx.skip();
    const a = target.info.account;
    const repo = `s3:${a.endpoint}/${BUCKET}/keys-${randomBytes(6).toString('hex')}`;
    const keys = (id: string, secret: string): Record<string, string> => client({ AWS_ACCESS_KEY_ID: id, AWS_SECRET_ACCESS_KEY: secret, AWS_REGION: a.region });
    ok(['--repo', repo, 'init'], keys(a.accessKeyId, a.secretAccessKey));
    const wrongSecret = 'not-the-secret-5f1e2d';
    const cases: [Record<string, string>, string][] = [
      [keys(a.accessKeyId, wrongSecret), 'the secret key does not match the access key'],
      [keys('KNOSUCHKEY0000000000', wrongSecret), 'the server does not know this access key'],
      [keys(target.info.stranger.accessKeyId, target.info.stranger.secretAccessKey), 'the credentials are not allowed to do this'],
    ];
    for (const [env, why] of cases) {
      for (const args of [['list'], ['init']]) {
        const at = args[0] === 'init' ? `${repo}-new` : repo;
        const r = await runSnap(['--repo', at, ...args], env);
        expect([r.code, r.stderr]).toEqual([1, expect.stringContaining(`permission denied: ${why}`)]);
        expect(r.stderr).toContain('[SNAP_PERMISSION]');
        expect(r.stderr).toContain(at);
        expect(r.stderr).not.toContain('operation log'); // no second message for the same refusal
        expect(r.stderr).not.toContain(wrongSecret);
        expect(r.stderr).not.toContain(target.info.stranger.secretAccessKey);
      }
    }
  }, 60_000);
});

describe('the cache folder of an S3 repository on a tmpfs', () => {
  let target: S3Target;
  const mounts: string[] = [];
  beforeAll(async () => {
    target = await s3Target(BUCKET);
  }, 900_000);
  afterAll(() => {
    for (const m of mounts) spawnSync('umount', [m]);
  });
  /** A new folder with a tmpfs of `options` mounted on it, or why there is none (the test then skips). */
  const tmpfs = (prefix: string, options: string): { dir: string } | { skip: string } => {
    if (process.getuid?.() !== 0) return { skip: 'needs root to mount a tmpfs' };
    const dir = tmpDir(prefix);
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]).status !== 0) return { skip: 'cannot mount a tmpfs here' };
    mounts.push(dir);
    return { dir };
  };

  it('that fills: create exits 1 only when no snapshot was saved; a files cache that does not fit after the snapshot is a warning', async (ctx) => {
    if (typeof target.info === 'string') return ctx.skip();
    const m = tmpfs('snap-rfl-cache-', 'size=4m,mode=0700');
    if ('skip' in m) return ctx.skip(m.skip);
    const mnt = m.dir;
    const a = target.info.account;
    const prefix = `cache-${randomBytes(6).toString('hex')}`;
    const repo = `s3:${a.endpoint}/${BUCKET}/${prefix}`;
    const store = target.backend({ prefix });
    const snapshots = async (): Promise<number> => {
      let n = 0;
      for await (const _ of store.list('snapshots/')) n++;
      return n;
    };
    const keys = { AWS_ACCESS_KEY_ID: a.accessKeyId, AWS_SECRET_ACCESS_KEY: a.secretAccessKey, AWS_REGION: a.region };
    const writer = client({ ...keys, SNAP_PASSWORD: '', SNAP_KDF_SCRYPT_N: '' });
    const small = client({ ...keys, SNAP_PASSWORD: '', SNAP_KDF_SCRYPT_N: '', SNAP_CACHE_DIR: mnt });
    // 10 folders of 1,000 files: their files-cache entries are the biggest write to the index.
    const src = tmpDir('snap-rfl-src-');
    for (let d = 0; d < 10; d++) {
      fs.mkdirSync(path.join(src, `d${d}`));
      for (let i = 0; i < 1000; i++) fs.writeFileSync(path.join(src, `d${d}`, `a-file-with-a-rather-long-name-${i}`), `${d} ${i}\n`);
    }
    ok(['--repo', repo, 'init', '--no-encryption'], writer);
    ok(['--repo', repo, 'create', src], writer); // the data is there: the next backups add no pack
    let saved = 0;
    const warned: number[] = [];
    for (let freeKiB = 400; freeKiB <= 800; freeKiB += 100) {
      for (const e of fs.readdirSync(mnt)) fs.rmSync(path.join(mnt, e), { recursive: true, force: true });
      ok(['--repo', repo, 'list'], small); // its index built from the repository
      const st = fs.statfsSync(mnt);
      fs.writeFileSync(path.join(mnt, 'filler'), Buffer.alloc(Math.max(0, st.bavail * st.bsize - freeKiB * 1024)));
      const before = await snapshots();
      const r = await runSnap(['--repo', repo, 'create', src], small);
      const after = await snapshots();
      expect(r.stderr).not.toMatch(/SNAP_INTERNAL|\n {4}at |Node\.js v/);
      if (r.code === 0) {
        expect(after).toBe(before + 1);
        saved++;
        if (r.stderr.includes('files cache')) {
          expect(r.stderr).toContain(`the repository index at ${mnt}`);
          warned.push(freeKiB);
        }
      } else {
        // A failure says so only when there is no snapshot to show for it.
        expect([r.code, after, r.stderr]).toEqual([1, before, expect.stringContaining(`the repository index at ${mnt}`)]);
        expect(r.stderr).toContain('[SNAP_NO_SPACE]');
      }
    }
    console.info(`cache on a tmpfs: ${saved} of 5 backups saved; the files cache did not fit after the snapshot at ${warned.join(', ') || 'none'} KiB free`);
    expectCheckClean(repo, writer);
    await store.close();
  }, 120_000);

  it('read-only, never having held the repository: list, ls, check, restore and export work with the index in memory; create fails with SNAP_READ_ONLY naming it; plain and encrypted', async (ctx) => {
    if (typeof target.info === 'string') return ctx.skip();
    const m = tmpfs('snap-rfl-rocache-', 'size=1m,ro');
    if ('skip' in m) return ctx.skip(m.skip);
    const mnt = m.dir;
    const a = target.info.account;
    const keys = { AWS_ACCESS_KEY_ID: a.accessKeyId, AWS_SECRET_ACCESS_KEY: a.secretAccessKey, AWS_REGION: a.region };
    const src = tmpDir('snap-rfl-src-');
    fs.writeFileSync(path.join(src, 'a.txt'), 'a file\n');
    for (const init of [['init', '--no-encryption'], ['init']]) {
      const repo = `s3:${a.endpoint}/${BUCKET}/rocache-${randomBytes(6).toString('hex')}`;
      const writer = client(keys);
      ok(['--repo', repo, ...init], writer);
      ok(['--repo', repo, 'create', src], writer);
      const reader = client({ ...keys, SNAP_CACHE_DIR: mnt });
      const out = tmpDir('snap-rfl-out-');
      const archive = path.join(out, 'a.tar');
      for (const args of [['list'], ['ls', 'latest'], ['check', '--read-data'], ['restore', 'latest', path.join(out, 'r')], ['export', 'latest', archive]]) {
        const r = await runSnap(['--repo', repo, ...args], reader);
        expect([args, r.code, r.stderr]).toEqual([args, 0, expect.stringContaining('the index is rebuilt in memory for this command')]);
      }
      // What was restored and exported is the file as backed up.
      expect(fs.readFileSync(path.join(out, 'r', src, 'a.txt'), 'utf8')).toBe('a file\n');
      const extracted = spawnSync('tar', ['-xOf', archive, '--wildcards', '*a.txt'], { encoding: 'utf8' });
      expect([extracted.status, extracted.stdout]).toEqual([0, 'a file\n']);
      const r = await runSnap(['--repo', repo, 'create', src], reader);
      expect([r.code, r.stderr]).toEqual([1, expect.stringContaining(`making the cache folder ${mnt}/`)]);
      expect(r.stderr).toContain('[SNAP_READ_ONLY]');
      expect(r.stderr).not.toMatch(/SNAP_INTERNAL|\n {4}at |Node\.js v/);
    }
    expect(fs.readdirSync(mnt)).toEqual([]);
  }, 60_000);
});

const missing = sshdMissing();
describe.skipIf(missing)('Ctrl-C while the SFTP server is down or frozen', () => {
  let sshd: TestSshd;
  beforeAll(async () => {
    sshd = await TestSshd.start();
  });
  afterAll(async () => {
    sshd?.thaw();
    await sshd?.close();
  });

  function setup(name: string): { repo: string; env: Record<string, string>; locks: () => string[] } {
    const dir = path.join(sshd.dir, name);
    const repo = sshd.location(dir);
    const env = client({ SNAP_SSH_COMMAND: `ssh -F ${sshd.clientConfig()}` });
    ok(['--repo', repo, 'init'], env);
    // The locks themselves: a lock is written to a temporary name first (gc removes one left by a stop).
    const locks = (): string[] => (fs.existsSync(path.join(dir, 'locks')) ? fs.readdirSync(path.join(dir, 'locks')).filter((n) => !n.startsWith('.tmp-')) : []);
    return { repo, env, locks };
  }

  it('stops the command at once (exit 130, SNAP_INTERRUPTED); the next command removes its lock and check is clean', async () => {
    const { repo, env, locks } = setup('repo-sigint');
    const r = await interruptWhileServerDown(repo, env, async () => locks().length > 0, () => sshd.stop());
    expectStoppedAtOnce(r);

    await sshd.start();
    await expectLockLeftThenRemoved(r, repo, env, locks);
  }, 120_000);

  it('frozen (SIGSTOP): the session is ended at once and the cleanup tried briefly; exit 130 within seconds, then all is well', async () => {
    const { repo, env, locks } = setup('repo-frozen');
    const r = await interruptWhileServerDown(repo, env, async () => locks().length > 0, () => sshd.freeze(), FROZEN_BOUND_MS + 5000).finally(() => sshd.thaw());
    expectStoppedAtOnce(r, FROZEN_BOUND_MS);
    expectLockLeftSaid(r);
    await expectRecovers(repo, env, async () => locks());
  }, 120_000);
});

const noAzurite = azuriteMissing();
describe.skipIf(noAzurite)('Ctrl-C while the Azure server (Azurite) is down or frozen', () => {
  let azurite: TestAzurite;
  beforeAll(async () => {
    // Blobs on disk: the first test restarts it and expects the lock left behind to be there.
    azurite = await TestAzurite.start();
  }, 120_000);
  afterAll(async () => {
    azurite?.thaw();
    await azurite?.close();
  });

  /** A repository in a container of its own; `held` says when a complete lock is in it (not an upload under way). */
  function setup(name: string): { repo: string; env: Record<string, string>; locks: () => Promise<string[]>; held: () => Promise<boolean>; close: () => Promise<void> } {
    const container = `rfl-${name}-${randomBytes(4).toString('hex')}`;
    const repo = azurite.location(container, 'repo');
    const env = client({ AZURE_STORAGE_KEY: azurite.key, AZURE_STORAGE_ENDPOINT: azurite.endpoint });
    ok(['--repo', repo, 'init'], env);
    const store = azurite.backend(container, { prefix: 'repo' });
    const locks = async (): Promise<string[]> => {
      const out: string[] = [];
      for await (const b of store.list('locks/')) out.push(b.name);
      return out;
    };
    // The lock itself, whole: freezing the server while the lock is still being written would test
    // the lock's writing, not the stop of a command that holds it. A Put Blob is atomic on Azure
    // and on Azurite (the blob is listed once all of it is stored, never before), so a lock listed
    // with its bytes is a whole one (its content is sealed: an encrypted repository's locks are).
    const held = async (): Promise<boolean> => {
      for await (const b of store.list('locks/')) if (b.size > 0) return true;
      return false;
    };
    return { repo, env, locks, held, close: () => store.close() };
  }

  it('stops the command at once (exit 130, SNAP_INTERRUPTED); the next command removes its lock and check is clean', async () => {
    const { repo, env, locks, held, close } = setup('sigint');
    const r = await interruptWhileServerDown(repo, env, held, () => azurite.stop());
    expectStoppedAtOnce(r);

    await azurite.start();
    await expectLockLeftThenRemoved(r, repo, env, locks);
    await close();
  }, 120_000);

  it('frozen (SIGSTOP): the upload in flight is aborted at once and the cleanup tried briefly; exit 130 within seconds, then all is well', async () => {
    const { repo, env, locks, held, close } = setup('frozen');
    const r = await interruptWhileServerDown(repo, env, held, () => azurite.freeze(), FROZEN_BOUND_MS + 5000).finally(() => azurite.thaw());
    expectStoppedAtOnce(r, FROZEN_BOUND_MS);
    expectLockLeftSaid(r);
    await expectRecovers(repo, env, locks);
    await close();
  }, 120_000);
});
