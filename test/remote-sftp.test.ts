// End to end through the built CLI against a real OpenSSH server (test/helpers/sshd.ts): a
// repository over SFTP from init to gc, its index in the local cache folder, and the server killed
// in the middle of a backup, and snap killed in the middle of one.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snap, snapAsync, tmpDir } from './helpers/cli.js';
import { TestSshd, sshdMissing } from './helpers/sshd.js';
import { earlyDerivation } from '../src/cli/early-key.js';
import type { ScryptParams } from '../src/core/crypto.js';
import { keyFileKdf } from '../src/repo/keys.js';
import { readKnown } from '../src/repo/known.js';
import { expectCheckClean, expectRestoresExactly, listSnapshots, makeSource, ok, startSnap } from './helpers/remote-e2e.js';

const missing = sshdMissing();
if (missing) console.warn(`SKIPPED: the SFTP end-to-end tests need OpenSSH: ${missing}`);

let sshd: TestSshd;
let n = 0;

beforeAll(async () => {
  if (!missing) sshd = await TestSshd.start();
});
afterAll(async () => {
  await sshd?.close();
});

/** The environment of one client: ssh through the test server's config, a cache folder of its own. */
function client(): Record<string, string> {
  const home = tmpDir('snap-client-');
  return { SNAP_SSH_COMMAND: `ssh -F ${sshd.clientConfig()}`, XDG_CACHE_HOME: path.join(home, 'cache'), HOME: home };
}

/** A new repository folder on the server: its location and its path (the server is this machine). */
function newRepo(): { repo: string; dir: string } {
  const dir = path.join(sshd.dir, `repo${++n}`);
  return { repo: sshd.location(dir), dir };
}

/** The names of every entry below `dir` and the contents of its regular files, one after the other. */
function everyByte(dir: string): Buffer {
  const all: Buffer[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else all.push(Buffer.from(e.name), e.isFile() ? fs.readFileSync(p) : Buffer.alloc(0));
    }
  };
  walk(dir);
  return Buffer.concat(all);
}

function files(dir: string, sub: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) (e.isDirectory() ? walk(path.join(d, e.name)) : out.push(e.name));
  };
  if (fs.existsSync(path.join(dir, sub))) walk(path.join(dir, sub));
  return out;
}

async function waitFor(what: string, probe: () => boolean, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(missing)('a repository over SFTP (OpenSSH)', () => {
  it('init (encrypted unless --no-encryption: without a password it is refused), create, list, restore, check, forget, gc; the cache index deleted and rebuilt', () => {
    const env = client();
    const { repo, dir } = newRepo();
    // Remote repositories are encrypted by default: with no password source, init makes nothing.
    const refused = snap(['--repo', repo, 'init'], { env });
    expect([refused.code, refused.stderr]).toEqual([1, expect.stringMatching(/\[SNAP_NO_PASSWORD\]/)]);
    expect(fs.existsSync(dir)).toBe(false);
    ok(['--repo', repo, 'init', '--no-encryption'], env);
    // the operation log records the init; the reserve for a full disk is there (the server tells its free space)
    expect(fs.readdirSync(dir).sort()).toEqual(['config', 'log', 'reserve']);
    expect(fs.statSync(path.join(dir, 'reserve')).size).toBe(16 * 1024 * 1024);

    const src = makeSource('sftp');
    ok(['--repo', repo, 'create', src], env);
    fs.writeFileSync(path.join(src, 'sub', 'f3.txt'), 'changed\n');
    ok(['--repo', repo, 'create', src], env);
    const snaps = listSnapshots(repo, env);
    expect(snaps).toHaveLength(2);
    expectRestoresExactly(repo, 'latest', src, env);
    expectCheckClean(repo, env);
    // No LevelDB index on the server (only the repository's index files, docs/format.md); no lock left behind.
    expect(fs.readdirSync(dir).sort()).toEqual(['config', 'data', 'locks', 'log', 'packindex', 'reserve', 'snapshots']);
    expect(files(dir, 'packindex')).toHaveLength(2); // one per backup
    expect(files(dir, 'locks')).toEqual([]);

    ok(['--repo', repo, 'forget', snaps[0]!.id], env);
    ok(['--repo', repo, 'gc'], env);
    expect(listSnapshots(repo, env).map((s) => s.id)).toEqual([snaps[1]!.id]);
    expectRestoresExactly(repo, snaps[1]!.id, src, env);

    fs.rmSync(path.join(env.XDG_CACHE_HOME!, 'snap'), { recursive: true, force: true });
    const rebuilt = ok(['--repo', repo, 'list'], env);
    expect(rebuilt.stderr).toMatch(/rebuilding it from the repository/);
    expectRestoresExactly(repo, 'latest', src, env);
    expectCheckClean(repo, env);
  });

  it('a remote repository is encrypted by default: the server holds no file name, content or password; the right password restores it (and passes a drill), a wrong one is refused', () => {
    const password = 'sftp-remote-pw-7f3a';
    const env = { ...client(), SNAP_PASSWORD: password, SNAP_KDF_SCRYPT_N: '1024' };
    const { repo, dir } = newRepo();
    const init = ok(['--repo', repo, 'init'], env);
    expect(init.stdout).toMatch(/created encrypted repository/);
    const src = makeSource('sftp-secret-marker');
    fs.writeFileSync(path.join(src, 'plain-name-4c1d.txt'), 'plaintext-content-4c1d\n'.repeat(50));
    ok(['--repo', repo, 'create', src], env);
    expectRestoresExactly(repo, 'latest', src, env);
    expectCheckClean(repo, env);
    // A restore drill and diff --live read an encrypted remote repository like every reader.
    const drilled = JSON.parse(ok(['--repo', repo, '--json', 'drill', '--full', '--against-source'], env).stdout) as { ok: boolean; files_verified: number; source: { compared: number } };
    expect([drilled.ok, drilled.files_verified, drilled.source.compared]).toEqual([true, 23, 23]);
    expect(ok(['--repo', repo, 'diff', 'latest', '--live'], env).stdout).toMatch(/summary: no differences\n$/);
    // Every byte the server holds, searched for what it must not learn.
    const stored = everyByte(dir);
    for (const secret of [password, 'plain-name-4c1d', 'plaintext-content-4c1d', 'sftp-secret-marker', src]) {
      expect(stored.includes(Buffer.from(secret)), `the server holds '${secret}'`).toBe(false);
    }
    const wrong = snap(['--repo', repo, 'list'], { env: { ...env, SNAP_PASSWORD: 'not-it' } });
    expect([wrong.code, wrong.stderr]).toEqual([4, expect.stringMatching(/\[SNAP_WRONG_PASSWORD\]/)]);
    expect(wrong.stderr).not.toContain('not-it');
  });

  it("the next command starts the password's key derivation before it connects: this machine records the derivation (public) of the key file the password opened, follows a changed password, and keeps no password", () => {
    const password = 'sftp-early-pw-91c2';
    const env = { ...client(), SNAP_PASSWORD: password, SNAP_KDF_SCRYPT_N: '1024' };
    const { repo, dir } = newRepo();
    ok(['--repo', repo, 'init'], env);
    const src = makeSource('early');
    ok(['--repo', repo, 'create', src], env);
    const known = path.join(env.XDG_CACHE_HOME, 'snap', 'known');
    const keyKdf = (): ScryptParams => {
      const ids = fs.readdirSync(path.join(dir, 'keys'));
      expect(ids).toHaveLength(1);
      return keyFileKdf(fs.readFileSync(path.join(dir, 'keys', ids[0]!)), ids[0]!);
    };
    const early = (e: Record<string, string | undefined>, args = ['--repo', repo, 'list']) => earlyDerivation(args, e, process.cwd());
    // What the next command derives early: the key file's derivation, with the password at hand.
    const expectEarly = (pw: string): void => {
      const k = keyKdf();
      const d = early({ ...env, SNAP_PASSWORD: pw });
      expect(d?.password.toString()).toBe(pw);
      expect({ ...d?.kdf, salt: d?.kdf.salt.toString('hex') }).toEqual({ ...k, salt: k.salt.toString('hex') });
      expect(readKnown(known, repo)?.record.kdf?.salt).toBe(k.salt.toString('base64'));
    };
    expectEarly(password);
    // Nothing without a password at hand, or for a command that does not unlock, or another location.
    expect(early({ ...env, SNAP_PASSWORD: undefined })).toBeUndefined();
    expect(early(env, ['--repo', repo, '--password-command', 'echo x', 'list'])).toBeUndefined();
    expect(early(env, ['--repo', repo, 'key', 'list'])).toBeUndefined();
    expect(early(env, ['--repo', repo + '-other', 'list'])).toBeUndefined();
    // A new password: its key file replaces the old one; the first command with it derives as
    // before (the recorded derivation is the old key's), opens, and records the new key's.
    const newPw = path.join(tmpDir(), 'new-pw');
    fs.writeFileSync(newPw, 'sftp-early-new-pw\n');
    ok(['--repo', repo, 'key', 'passwd', '--new-password-file', newPw], env);
    const next = { ...env, SNAP_PASSWORD: 'sftp-early-new-pw' };
    expect(listSnapshots(repo, next)).toHaveLength(1);
    expectEarly('sftp-early-new-pw');
    const wrong = snap(['--repo', repo, 'list'], { env });
    expect([wrong.code, wrong.stderr]).toEqual([4, expect.stringMatching(/\[SNAP_WRONG_PASSWORD\]/)]);
    expectRestoresExactly(repo, 'latest', src, next);
    // The cache folder holds neither password.
    const cached = everyByte(env.XDG_CACHE_HOME);
    for (const secret of [password, 'sftp-early-new-pw']) expect(cached.includes(Buffer.from(secret)), secret).toBe(false);
  });

  it('browsing, export, tag, stats, index rebuild and repair work on an SFTP repository', () => {
    const env = client();
    const { repo } = newRepo();
    ok(['--repo', repo, 'init', '--no-encryption'], env);
    const src = makeSource('browse', 512 * 1024);
    ok(['--repo', repo, 'create', src], env);
    fs.writeFileSync(path.join(src, 'sub', 'f2.txt'), 'second version\n');
    ok(['--repo', repo, 'create', src], env);
    const file = path.join(src, 'sub', 'f2.txt');
    expect(ok(['--repo', repo, 'cat', 'latest', file], env).stdout).toBe('second version\n');
    expect(ok(['--repo', repo, 'ls', 'latest', path.join(src, 'sub')], env).stdout).toContain('f19.txt');
    const snaps = listSnapshots(repo, env);
    expect(ok(['--repo', repo, 'diff', snaps[0]!.id, snaps[1]!.id], env).stdout).toContain('f2.txt');
    expect(ok(['--repo', repo, 'find', 'f2.txt'], env).stdout).toContain('f2.txt');
    expect(ok(['--repo', repo, 'history', file], env).stdout).toMatch(/f2\.txt|second|2/);
    expect(ok(['--repo', repo, 'stats'], env).code).toBe(0);
    const tar = path.join(tmpDir(), 'out.tar');
    ok(['--repo', repo, 'export', 'latest', tar], env);
    expect(fs.statSync(tar).size).toBeGreaterThan(512 * 1024);
    ok(['--repo', repo, 'tag', '--add', 'kept', 'latest'], env);
    expect(listSnapshots(repo, env).some((s) => s.tags?.includes('kept'))).toBe(true);
    expect(ok(['--repo', repo, 'index', 'rebuild'], env).code).toBe(0);
    const repair = ok(['--repo', repo, 'repair', '--read-data'], env);
    expect(repair.code).toBe(0);
    expectRestoresExactly(repo, 'latest', src, env);
    expectCheckClean(repo, env);
  });

  it('an unknown host key is refused with its fingerprint, and nothing is written', () => {
    const env = { ...client(), SNAP_SSH_COMMAND: `ssh -F ${sshd.clientConfig({ knownHosts: path.join(tmpDir(), 'empty_known_hosts') })}` };
    const { repo, dir } = newRepo();
    const r = snap(['--repo', repo, 'init', '--no-encryption'], { env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(sshd.hostKeyFingerprint);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('the server killed in the middle of a backup, then snap killed in the middle of one: check stays clean, every listed snapshot restores', async () => {
    const env = client();
    const { repo, dir } = newRepo();
    ok(['--repo', repo, 'init', '--no-encryption'], env);
    const base = makeSource('base', 256 * 1024);
    ok(['--repo', repo, 'create', base], env);
    const packsBefore = files(dir, 'data').length;

    // 1. sshd and every session killed once the first new pack is on the server; back 1 s later.
    const src = makeSource('big', 24 * 1024 * 1024);
    const { child, stderr, exited } = startSnap(['--repo', repo, 'create', src], env);
    await waitFor('a pack on the server', () => files(dir, 'data').length > packsBefore || child.exitCode !== null);
    await sshd.stop('SIGKILL');
    await new Promise((r) => setTimeout(r, 1000));
    await sshd.start();
    const code = await exited;
    expect([0, 1], stderr()).toContain(code);
    expectCheckClean(repo, env);
    for (const s of listSnapshots(repo, env)) expectRestoresExactly(repo, s.id, s.paths[0] === base ? base : src, env);
    if (code !== 0) {
      ok(['--repo', repo, 'create', src], env);
      expectRestoresExactly(repo, 'latest', src, env);
    }

    // 2. snap itself killed (kill -9) while it uploads: its lock is stale (its pid is gone) and its
    // temporary files are left; check is clean and gc sweeps what it left.
    fs.writeFileSync(path.join(src, 'big2.bin'), fs.readFileSync(path.join(src, 'big.bin')).reverse());
    const before = files(dir, 'data').length;
    const victim = snapAsync(['--repo', repo, 'create', src], { env });
    victim.stdout.resume();
    victim.stderr.resume();
    const gone = new Promise((r) => victim.on('close', r));
    await waitFor('a pack of the victim', () => files(dir, 'data').length > before || victim.exitCode !== null);
    victim.kill('SIGKILL');
    await gone;
    expectCheckClean(repo, env);
    ok(['--repo', repo, 'gc'], env);
    expectCheckClean(repo, env);
    const listed = listSnapshots(repo, env);
    for (const s of listed) expect(snap(['--repo', repo, 'restore', '--dry-run', s.id, tmpDir()], { env }).code).toBe(0);
    ok(['--repo', repo, 'create', src], env);
    expect(listSnapshots(repo, env)).toHaveLength(listed.length + 1);
    expectRestoresExactly(repo, 'latest', src, env);
  }, 400_000);
});
