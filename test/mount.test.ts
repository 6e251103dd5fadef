// `snap mount` end to end: the built CLI mounts a real FUSE file system (as root, with mount(8);
// as a user, through fusermount3: mount-user.test.ts);
// this test process reads it with ordinary file calls, as ls, cp and diff would. Skipped, saying
// why, where there is no /dev/fuse or the tests do not run as root.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, snap, tmpDir } from './helpers/cli.js';
import { startMount } from './helpers/mount.js';
import { mountTypeAt } from '../src/mount/fuse.js';

/** Whether this machine lets root make a FUSE mount (a container may have /dev/fuse but not the right to mount). */
function fuseMountWorks(): boolean {
  if (process.getuid?.() !== 0 || !fs.existsSync('/dev/fuse')) return false;
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-fuse-probe-'));
  try {
    const r = spawnSync('bash', ['-c', 'exec 3<>/dev/fuse && mount -i -t fuse.snapprobe -o ro,fd=3,rootmode=40000,user_id=0,group_id=0 snapprobe "$1" && umount -i -l "$1"', 'probe', probe]);
    return r.status === 0;
  } finally {
    fs.rmSync(probe, { recursive: true, force: true });
  }
}
const canMount = fuseMountWorks();
if (!canMount) console.warn('mount.test.ts: skipped: snap mount needs root, /dev/fuse and the right to mount (mount(8)) here');
const hasAttr = spawnSync('setfattr', ['--version']).status === 0;

const ENV = { TZ: 'UTC', SNAP_KDF_SCRYPT_N: '1024', SNAP_PASSWORD: 'mount test password' };

interface Mounted {
  proc: ChildProcess;
  at: string;
  stderr(): string;
  /** SIGINT, then the exit status. */
  stop(): Promise<number | null>;
  exited: Promise<number | null>;
}

const live: Mounted[] = [];

function isMounted(at: string): boolean {
  return fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === at);
}

async function mountRepo(repo: string, at: string, env: Record<string, string> = {}): Promise<Mounted> {
  const { proc, exited, stderr } = await startMount([process.execPath, CLI, '--repo', repo, 'mount', at], {
    cwd: ROOT,
    env: { ...process.env, SNAP_REPO: '', XDG_DATA_HOME: '', XDG_CACHE_HOME: path.join(path.dirname(repo), 'cache'), ...ENV, ...env },
  });
  const m: Mounted = {
    proc,
    at,
    stderr,
    exited,
    stop: () => {
      if (proc.exitCode === null) proc.kill('SIGINT');
      return exited;
    },
  };
  live.push(m);
  return m;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, f: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`waited ${ms} ms for ${what}`);
    await sleep(100);
  }
}

describe.skipIf(!canMount)('snap mount', () => {
  let dir: string;
  let repo: string;
  let src: string;
  const big = randomBytes(3 * 1024 * 1024 + 12345);
  const BAD = Buffer.concat([Buffer.from('bad-'), Buffer.from([0xff, 0xfe]), Buffer.from('.txt')]);

  const cli = (args: string[], env: Record<string, string> = {}) => snap(['--repo', repo, ...args], { env: { ...ENV, XDG_CACHE_HOME: path.join(dir, 'cache'), ...env } });

  beforeAll(() => {
    dir = tmpDir('snap-mount-');
    repo = path.join(dir, 'repo');
    src = path.join(dir, 'src');
    fs.mkdirSync(path.join(src, 'docs', 'deep'), { recursive: true });
    fs.writeFileSync(path.join(src, 'docs', 'deep', 'note.txt'), 'hello from the past\n');
    fs.writeFileSync(path.join(src, 'big.bin'), big);
    fs.writeFileSync(path.join(src, 'secret.txt'), 'only root\n', { mode: 0o600 });
    fs.chmodSync(path.join(src, 'secret.txt'), 0o600);
    fs.symlinkSync('docs/deep/note.txt', path.join(src, 'link'));
    fs.writeFileSync(Buffer.concat([Buffer.from(src + '/'), BAD]), 'not utf-8\n');
    fs.writeFileSync(path.join(src, 'hard-a'), 'linked\n');
    fs.linkSync(path.join(src, 'hard-a'), path.join(src, 'docs', 'hard-b'));
    fs.utimesSync(path.join(src, 'docs', 'deep', 'note.txt'), new Date('1965-05-06T07:08:09Z'), new Date('1965-05-06T07:08:09Z'));
    if (hasAttr) spawnSync('setfattr', ['-n', 'user.colour', '-v', 'blue', path.join(src, 'big.bin')]);
    expect(cli(['init']).code).toBe(0);
    expect(cli(['create', src, '--time', '2026-03-01T10:00:00Z', '--tag', 'monthly']).code).toBe(0);
    fs.writeFileSync(path.join(src, 'docs', 'deep', 'note.txt'), 'hello from today\n');
    expect(cli(['create', src, '--time', '2026-03-02T11:30:00Z']).code).toBe(0);
  }, 120_000);

  afterAll(async () => {
    for (const m of live) {
      await m.stop();
      if (isMounted(m.at)) spawnSync('umount', ['-l', m.at]);
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('shows every snapshot by date, host and tag, with contents, metadata and xattrs as backed up', async () => {
    const at = fs.mkdtempSync(path.join(dir, 'mnt-'));
    const m = await mountRepo(repo, at);
    expect(isMounted(at)).toBe(true);
    const ids = (JSON.parse(cli(['--json', 'list']).stdout) as { id: string; time: string }[]).sort((a, b) => (a.time < b.time ? -1 : 1)).map((x) => x.id.slice(0, 8));
    expect(fs.readdirSync(at).sort()).toEqual(['by-date', 'hosts', 'latest', 'snapshots', 'tags']);
    expect(fs.readdirSync(path.join(at, 'snapshots')).sort()).toEqual([...ids].sort());
    expect(fs.readlinkSync(path.join(at, 'latest'))).toBe(`snapshots/${ids[1]}`);
    expect(fs.readdirSync(path.join(at, 'by-date'))).toEqual(['2026']);
    expect(fs.readdirSync(path.join(at, 'by-date', '2026'))).toEqual(['03']);
    expect(fs.readdirSync(path.join(at, 'by-date', '2026', '03')).sort()).toEqual(['01', '02']);
    expect(fs.readdirSync(path.join(at, 'by-date', '2026', '03', '02'))).toEqual(['11:30:00']);
    expect(fs.readdirSync(path.join(at, 'hosts'))).toEqual([os.hostname()]);
    expect(fs.readdirSync(path.join(at, 'hosts', os.hostname())).sort()).toEqual(['2026-03-01T10:00:00', '2026-03-02T11:30:00']);
    expect(fs.readlinkSync(path.join(at, 'hosts', os.hostname(), '2026-03-01T10:00:00'))).toBe(`../../snapshots/${ids[0]}`);
    expect(fs.readdirSync(path.join(at, 'tags'))).toEqual(['monthly']);
    expect(fs.readdirSync(path.join(at, 'tags', 'monthly'))).toEqual(['2026-03-01T10:00:00']);
    // Through the links, as a user would walk them.
    const old = path.join(at, 'tags', 'monthly', '2026-03-01T10:00:00', src);
    const now = path.join(at, 'latest', src);
    expect(fs.readFileSync(path.join(old, 'docs', 'deep', 'note.txt'), 'utf8')).toBe('hello from the past\n');
    expect(fs.readFileSync(path.join(now, 'docs', 'deep', 'note.txt'), 'utf8')).toBe('hello from today\n');
    // find over a date folder (real folders, not links) lists what the snapshot holds.
    const find = (root: string): string[] => spawnSync('find', [root, '-name', '*.txt', '-printf', '%P\\n']).stdout.toString('latin1').trim().split('\n').sort();
    const found = find(path.join(at, 'by-date', '2026', '03', '01', '10:00:00', src));
    expect(found).toContain('docs/deep/note.txt');
    expect(found).toEqual(find(src));
    // Hard links: one inode number and the recorded link count.
    const h1 = fs.statSync(path.join(now, 'hard-a'));
    const h2 = fs.statSync(path.join(now, 'docs', 'hard-b'));
    expect(h1.nlink).toBe(2);
    expect(h1.ino).toBe(h2.ino);
    expect(h1.ino).not.toBe(fs.statSync(path.join(now, 'big.bin')).ino);
    // A file of many chunks: whole, and at offsets that start and end inside chunks.
    expect(fs.readFileSync(path.join(now, 'big.bin')).equals(big)).toBe(true);
    const fd = fs.openSync(path.join(old, 'big.bin'), 'r');
    for (const [off, len] of [[0, 1], [1_000_003, 70_000], [big.length - 5000, 5000], [2 * 1024 * 1024 - 7, 300_000]] as const) {
      const b = Buffer.alloc(len);
      expect(fs.readSync(fd, b, 0, len, off)).toBe(len);
      expect(b.equals(big.subarray(off, off + len)), `bytes ${off}+${len}`).toBe(true);
    }
    expect(fs.readSync(fd, Buffer.alloc(10), 0, 10, big.length)).toBe(0);
    fs.closeSync(fd);
    // Metadata as recorded: mode, owner, a time before 1970, a symlink, a name that is not UTF-8.
    const st = fs.statSync(path.join(old, 'secret.txt'));
    expect(st.mode & 0o7777).toBe(0o600);
    expect(st.uid).toBe(0);
    expect(fs.statSync(path.join(old, 'docs', 'deep', 'note.txt')).mtime.toISOString()).toBe('1965-05-06T07:08:09.000Z');
    expect(fs.statSync(path.join(now, 'big.bin')).size).toBe(big.length);
    expect(fs.readlinkSync(path.join(now, 'link'))).toBe('docs/deep/note.txt');
    expect(fs.readFileSync(path.join(now, 'link'), 'utf8')).toBe('hello from today\n');
    const names = fs.readdirSync(now, { encoding: 'buffer' });
    expect(names.some((n) => n.equals(BAD))).toBe(true);
    expect(fs.readFileSync(Buffer.concat([Buffer.from(now + '/'), BAD]), 'utf8')).toBe('not utf-8\n');
    if (hasAttr) {
      const x = spawnSync('getfattr', ['-n', 'user.colour', '--only-values', path.join(now, 'big.bin')]);
      expect(x.stdout.toString()).toBe('blue');
    }
    // Read-only.
    expect(() => fs.writeFileSync(path.join(now, 'new.txt'), 'x')).toThrow(/EROFS/);
    expect(() => fs.openSync(path.join(now, 'big.bin'), 'r+')).toThrow(/EROFS/);
    expect(() => fs.readdirSync(path.join(at, 'snapshots', 'nope'))).toThrow(/ENOENT/);
    // GNU diff agrees with the source; cp -a out of the mount keeps bytes, modes and times.
    expect(spawnSync('diff', ['-r', '--no-dereference', path.join(now, 'docs'), path.join(src, 'docs')]).status).toBe(0);
    const copy = path.join(dir, 'copied');
    expect(spawnSync('cp', ['-a', now, copy]).status).toBe(0);
    expect(spawnSync('diff', ['-r', '--no-dereference', copy, src]).status).toBe(0);
    for (const f of ['big.bin', 'secret.txt', 'docs/deep/note.txt']) {
      const a = fs.statSync(path.join(copy, f));
      const b = fs.statSync(path.join(src, f));
      expect([a.mode, a.mtimeMs, a.size], f).toEqual([b.mode, b.mtimeMs, b.size]);
    }
    expect(await m.stop()).toBe(0);
    expect(isMounted(at)).toBe(false);
    expect(m.stderr()).toContain('unmounted');
  }, 120_000);

  it('holds nothing against other commands: a new backup appears, a forget and gc run while it is mounted', async () => {
    const at = fs.mkdtempSync(path.join(dir, 'mnt-'));
    const m = await mountRepo(repo, at);
    expect(fs.readFileSync(path.join(at, 'latest', src, 'docs', 'deep', 'note.txt'), 'utf8')).toBe('hello from today\n');
    const before = fs.readlinkSync(path.join(at, 'latest')); // snapshots/ID, looked up just now
    fs.writeFileSync(path.join(src, 'docs', 'deep', 'note.txt'), 'hello from tomorrow\n');
    const made = cli(['create', src, '--time', '2026-03-03T09:00:00Z']);
    expect(made.code, made.stderr).toBe(0);
    await until('the new snapshot in by-date/', () => (fs.existsSync(path.join(at, 'by-date', '2026', '03', '03', '09:00:00')) ? true : undefined));
    const newest = (JSON.parse(cli(['--json', 'list']).stdout) as { id: string; time: string }[]).find((x) => x.time.startsWith('2026-03-03'))!.id.slice(0, 8);
    await until('latest to move', () => (fs.readlinkSync(path.join(at, 'latest')) === `snapshots/${newest}` ? true : undefined));
    // Exclusive commands wait for the mount's reads, not for the mount.
    const forgot = cli(['--lock-wait', '60s', 'forget', '--keep-last', '1']);
    expect(forgot.code, forgot.stderr).toBe(0);
    const gc = cli(['--lock-wait', '60s', 'gc']);
    expect(gc.code, gc.stderr).toBe(0);
    await until('the forgotten snapshots to go', () => (fs.readdirSync(path.join(at, 'snapshots')).length === 1 ? true : undefined));
    expect(fs.readdirSync(path.join(at, 'snapshots'))).toEqual([newest]);
    // The kernel does not keep a forgotten snapshot's folder by name either (its lookup expires).
    await until('the forgotten folder to be gone by name', () => (fs.existsSync(path.join(at, before)) ? undefined : true));
    expect(fs.readdirSync(path.join(at, 'by-date', '2026', '03'))).toEqual(['03']);
    expect(fs.readdirSync(path.join(at, 'hosts', os.hostname()))).toEqual(['2026-03-03T09:00:00']);
    expect(fs.readdirSync(path.join(at, 'tags'))).toEqual([]);
    expect(cli(['check']).code).toBe(0);
    expect(await m.stop()).toBe(0);
  }, 180_000);

  it('a damaged chunk is an I/O error naming the file, never wrong bytes (encrypted repository)', async () => {
    const r2 = path.join(dir, 'enc', 'repo');
    fs.mkdirSync(path.dirname(r2));
    const s2 = path.join(dir, 'enc-src');
    fs.mkdirSync(s2);
    const victim = randomBytes(400_000);
    fs.writeFileSync(path.join(s2, 'victim.bin'), victim);
    fs.writeFileSync(path.join(s2, 'fine.txt'), 'fine\n');
    const env = { XDG_CACHE_HOME: path.join(dir, 'enc', 'cache') };
    expect(snap(['--repo', r2, 'init', '--encrypt'], { env: { ...ENV, ...env } }).code).toBe(0);
    expect(snap(['--repo', r2, 'create', s2, '--time', '2026-03-05T00:00:00Z'], { env: { ...ENV, ...env } }).code).toBe(0);
    // The data pack is the largest file of the repository: one byte in the middle of it changes.
    const files: string[] = [];
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) (e.isDirectory() ? walk : (p: string) => files.push(p))(path.join(d, e.name));
    };
    walk(path.join(r2, 'data'));
    const pack = files.sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0]!;
    const bytes = fs.readFileSync(pack);
    bytes[bytes.length >> 1] ^= 0x40;
    fs.writeFileSync(pack, bytes);
    const at = fs.mkdtempSync(path.join(dir, 'mnt-'));
    const m = await mountRepo(r2, at, env);
    const root = path.join(at, 'by-date', '2026', '03', '05', '00:00:00', s2);
    expect(fs.readdirSync(root).sort()).toEqual(['fine.txt', 'victim.bin']);
    expect(fs.statSync(path.join(root, 'victim.bin')).size).toBe(victim.length);
    expect(() => fs.readFileSync(path.join(root, 'victim.bin'))).toThrow(/EIO/);
    await until('the message', () => (m.stderr().includes('victim.bin') ? true : undefined));
    expect(m.stderr()).toMatch(/failed authentication|failed verification|SNAP_CORRUPT|changed/);
    expect(await m.stop()).toBe(0);
  }, 120_000);

  it('Ctrl-C while a program holds a file: detached at once, that file still reads, snap ends when it is closed', async () => {
    const at = fs.mkdtempSync(path.join(dir, 'mnt-'));
    const m = await mountRepo(repo, at);
    const fd = fs.openSync(path.join(at, 'latest', src, 'big.bin'), 'r');
    m.proc.kill('SIGINT');
    await until('the mount point to be detached', () => (isMounted(at) ? undefined : true));
    expect(fs.readdirSync(at)).toEqual([]); // the empty folder underneath
    const b = Buffer.alloc(100_000);
    expect(fs.readSync(fd, b, 0, b.length, 1_500_000)).toBe(b.length);
    expect(b.equals(big.subarray(1_500_000, 1_600_000))).toBe(true);
    expect(m.proc.exitCode).toBeNull();
    fs.closeSync(fd);
    expect(await m.exited).toBe(0);
    expect(m.stderr()).toMatch(/detached/);
  }, 120_000);

  it('ends when unmounted from outside; refuses a folder that is not empty (users: mount-user.test.ts)', async () => {
    const at = fs.mkdtempSync(path.join(dir, 'mnt-'));
    const m = await mountRepo(repo, at);
    expect(spawnSync('umount', [at]).status).toBe(0);
    expect(await m.exited).toBe(0);
    const full = fs.mkdtempSync(path.join(dir, 'full-'));
    fs.writeFileSync(path.join(full, 'x'), 'x');
    const r = cli(['mount', full]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not empty.*SNAP_USAGE/);
  }, 120_000);

  it('a mount left by a snap mount killed outright (SIGKILL): the next mount there unmounts it, says so, and serves; a dead mount of another kind is named, with the command that unmounts it', async () => {
    const at = fs.mkdtempSync(path.join(dir, 'mnt-'));
    const m = await mountRepo(repo, at);
    m.proc.kill('SIGKILL');
    await m.exited;
    // The kernel keeps the mount; its program is gone.
    expect(isMounted(at)).toBe(true);
    expect(() => fs.statSync(at)).toThrow(/ENOTCONN/);
    const again = await mountRepo(repo, at);
    await until('the snapshots at the mount point', () => (fs.existsSync(path.join(at, 'latest')) ? true : undefined));
    expect(again.stderr()).toMatch(/was still mounted by a snap mount that ended without unmounting \(killed\?\): unmounted it/);
    // The latest snapshot's file, as `snap cat` gives it (the tests before may have added snapshots).
    expect(fs.readFileSync(path.join(at, 'latest', src, 'docs', 'deep', 'note.txt'), 'utf8')).toBe(cli(['cat', 'latest', path.join(src, 'docs', 'deep', 'note.txt')]).stdout);
    expect(await again.stop()).toBe(0);
    expect(isMounted(at)).toBe(false);

    // A FUSE mount of another program, gone: left alone, named.
    const other = fs.mkdtempSync(path.join(dir, 'other-'));
    const made = spawnSync('bash', ['-c', 'exec 3<>/dev/fuse && mount -i -t fuse.elsewhere -o ro,fd=3,rootmode=40000,user_id=0,group_id=0 elsewhere "$1"', 'x', other]);
    expect(made.status, made.stderr?.toString()).toBe(0);
    try {
      // The descriptor was closed with bash: the connection is gone, as when its program died.
      expect(() => fs.statSync(other)).toThrow(/ENOTCONN/);
      const r = cli(['mount', other]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/is a mount whose program is gone .*fuse\.elsewhere.*unmount it first \(umount .*\).*SNAP_USAGE/);
      expect(isMounted(other)).toBe(true);
    } finally {
      spawnSync('umount', ['-l', other]);
    }
  }, 120_000);
});

describe('mountTypeAt (/proc/self/mountinfo)', () => {
  it('finds the type of the mount on top at a path, with the escapes of spaces and backslashes', () => {
    const info = path.join(tmpDir('snap-mountinfo-'), 'mountinfo');
    fs.writeFileSync(
      info,
      [
        '22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw',
        '45 22 0:40 / /tmp/a\\040b ro,nosuid - fuse.snap snap:/r ro,user_id=0',
        '46 45 0:41 / /tmp/a\\040b ro - fuse.other x ro',
        '47 22 0:42 / /tmp/c\\134d rw shared:2 master:1 - tmpfs tmpfs rw',
        '',
      ].join('\n'),
    );
    expect(mountTypeAt('/tmp/a b', info)).toBe('fuse.other');
    expect(mountTypeAt('/tmp/c\\d', info)).toBe('tmpfs');
    expect(mountTypeAt('/', info)).toBe('ext4');
    expect(mountTypeAt('/tmp/none', info)).toBeUndefined();
  });
});

describe('snapshot folder names', () => {
  it('local time to the second; two in one second get their ids; ids sharing 8 digits get longer', async () => {
    const { nameSnapshots } = await import('../src/mount/snapfs.js');
    const s = (id: string, time: string) => ({ id, time }) as Parameters<typeof nameSnapshots>[0][number];
    const a = 'aaaaaaaa1' + '0'.repeat(55);
    const b = 'aaaaaaaa2' + '0'.repeat(55);
    const c = 'c'.repeat(64);
    const prevTz = process.env.TZ;
    process.env.TZ = 'UTC';
    try {
      const named = nameSnapshots([s(c, '2026-03-01T10:00:01.000Z'), s(b, '2026-03-01T10:00:00.900Z'), s(a, '2026-03-01T10:00:00.100Z')]);
      expect(named.map((n) => [n.id, n.time])).toEqual([
        ['aaaaaaaa1', '2026-03-01T10:00:00-aaaaaaaa1'],
        ['aaaaaaaa2', '2026-03-01T10:00:00-aaaaaaaa2'],
        ['cccccccc', '2026-03-01T10:00:01'],
      ]);
    } finally {
      if (prevTz === undefined) delete process.env.TZ;
      else process.env.TZ = prevTz;
    }
  });
});
