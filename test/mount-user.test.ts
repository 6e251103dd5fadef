// `snap mount` as a user (not root): the built CLI, run as `nobody`, mounts through fusermount3
// (or fuse 2's fusermount, whichever is installed; docs/mount.md), and `nobody` reads the mount
// with ls, cat, cp -a and find, then ends it with `fusermount3 -u` or Ctrl-C.
//
// The tests run as root and give `nobody` what a desktop user has: a /dev/fuse it may open (0666,
// as Debian's udev makes it). So that the machine's own /dev/fuse is left as it is, that happens
// in a private mount namespace (unshare), where a node of the same device, readable by all, is
// bound over /dev/fuse; snap and every reader run in that namespace (nsenter) as nobody
// (setpriv). Skipped, saying why, without root, /dev/fuse or fusermount3.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, snap, tmpDir } from './helpers/cli.js';
import { cliFor, nodeFor } from './helpers/readable-cli.js';
import { type StartedMount, startMount } from './helpers/mount.js';

const NOBODY = 65534;

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir || '.', name);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}
const tool = onPath('fusermount3') ?? onPath('fusermount');

/** Whether this machine lets root make a private mount namespace with its own /dev/fuse node. */
function namespaceWorks(): boolean {
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-ns-probe-'));
  try {
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount -t tmpfs -o size=64k snap-probe "$1" && mknod -m 666 "$1/fuse" c 10 229 && mount --bind "$1/fuse" /dev/fuse', 'sh', probe]);
    return r.status === 0;
  } finally {
    fs.rmSync(probe, { recursive: true, force: true });
  }
}

const why =
  process.getuid?.() !== 0
    ? 'it runs as root (it gives nobody a /dev/fuse of its own in a private mount namespace)'
    : !fs.existsSync('/dev/fuse')
      ? 'no /dev/fuse'
      : tool === undefined
        ? 'no fusermount3 (Debian: apt install fuse3) or fusermount'
        : !namespaceWorks()
          ? 'root may not make a mount namespace with a device node here (unshare, mknod)'
          : undefined;
if (why) console.warn(`mount-user.test.ts: skipped: ${why}`);

const ENV = { TZ: 'UTC', SNAP_KDF_SCRYPT_N: '1024', SNAP_PASSWORD: 'mount user test password' };

/** The namespace: a process that holds it (sleep), started by unshare with /dev/fuse open to all. */
async function startNamespace(devDir: string): Promise<ChildProcess> {
  const rdev = fs.statSync('/dev/fuse').rdev;
  const major = (rdev >> 8) & 0xfff;
  const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
  const script = `mount -t tmpfs -o size=64k,mode=755 snap-test-dev "$1" && mknod -m 666 "$1/fuse" c ${major} ${minor} && mount --bind "$1/fuse" /dev/fuse && echo ready && exec sleep 100000`;
  const proc = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', devDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    proc.on('exit', (code) => reject(new Error(`the mount namespace did not start (${code}): ${err}`)));
  });
  return proc;
}

describe.skipIf(why !== undefined)('snap mount as a user (fusermount3)', () => {
  let dir: string;
  let repo: string;
  let src: string;
  let ns: ChildProcess;
  let cli: string;
  let node: string;
  const big = randomBytes(2 * 1024 * 1024 + 4321);

  /** argv running `cmd` as nobody inside the namespace. */
  const inNs = (cmd: string[]): string[] => ['nsenter', `--mount=/proc/${ns.pid}/ns/mnt`, '--', 'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', ...cmd];
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, SNAP_REPO: '', XDG_DATA_HOME: '', HOME: dir, XDG_CACHE_HOME: path.join(dir, 'cache'), ...ENV });
  const asUser = (cmd: string[]) => {
    const [c, ...args] = inNs(cmd);
    const r = spawnSync(c!, args, { env: env(), maxBuffer: 64 * 1024 * 1024 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
  };
  const mounts = (): string[] => fs.readFileSync(`/proc/${ns.pid}/mounts`, 'utf8').split('\n');
  const isMounted = (at: string): boolean => mounts().some((l) => l.split(' ')[1] === at);

  type Mounted = StartedMount;
  const live: ChildProcess[] = [];

  async function mount(at: string): Promise<Mounted> {
    return startMount(inNs([node, cli, '--repo', repo, 'mount', at]), { env: env(), spawned: (p) => void live.push(p) });
  }

  async function until(what: string, f: () => boolean, ms = 10_000): Promise<void> {
    const end = Date.now() + ms;
    while (!f()) {
      if (Date.now() > end) throw new Error(`waited ${ms} ms for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  beforeAll(async () => {
    dir = tmpDir('snap-mount-user-');
    fs.mkdirSync(path.join(dir, 'dev'));
    ns = await startNamespace(path.join(dir, 'dev'));
    cli = cliFor(NOBODY, NOBODY, ROOT);
    node = nodeFor(NOBODY, NOBODY);
    repo = path.join(dir, 'repo');
    src = path.join(dir, 'src');
    fs.mkdirSync(path.join(src, 'docs', 'deep'), { recursive: true });
    fs.writeFileSync(path.join(src, 'docs', 'deep', 'note.txt'), 'hello from the past\n');
    fs.writeFileSync(path.join(src, 'big.bin'), big);
    fs.writeFileSync(path.join(src, 'private.txt'), 'mine\n', { mode: 0o600 });
    fs.symlinkSync('docs/deep/note.txt', path.join(src, 'link'));
    fs.utimesSync(path.join(src, 'docs', 'deep', 'note.txt'), new Date('1999-12-31T23:59:58Z'), new Date('1999-12-31T23:59:58Z'));
    expect(spawnSync('chown', ['-R', '-h', `${NOBODY}:${NOBODY}`, dir]).status).toBe(0);
    const run = (args: string[]) => snap(['--repo', repo, ...args], { asUser: { uid: NOBODY, gid: NOBODY }, env: { ...ENV, HOME: dir, XDG_CACHE_HOME: path.join(dir, 'cache') } });
    const init = run(['init']);
    expect(init.code, init.stderr).toBe(0);
    const made = run(['create', src, '--time', '2026-04-01T08:00:00Z']);
    expect(made.code, made.stderr).toBe(0);
  }, 120_000);

  afterAll(async () => {
    for (const p of live) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    ns?.kill('SIGKILL');
    if (dir) {
      // The namespace's mounts went with it; what nobody wrote is removed as root.
      await new Promise((r) => setTimeout(r, 200));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('mounts without root; ls, cat, cp -a and find read it; fusermount3 -u ends it', async () => {
    const at = path.join(dir, 'mnt1');
    fs.mkdirSync(at);
    fs.chownSync(at, NOBODY, NOBODY);
    const m = await mount(at);
    expect(isMounted(at)).toBe(true);
    const line = mounts().find((l) => l.split(' ')[1] === at)!;
    expect(line).toMatch(new RegExp(`^snap:\\S+ ${at} fuse\\.snap ro,.*user_id=${NOBODY},group_id=${NOBODY}`));
    // Nobody else may enter the mount (no --allow-other), not even root.
    const asRoot = spawnSync('nsenter', [`--mount=/proc/${ns.pid}/ns/mnt`, '--', 'ls', at]);
    expect(asRoot.status).not.toBe(0);
    expect(asRoot.stderr.toString()).toMatch(/Permission denied/);

    const ls = asUser(['ls', at]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout.toString().split('\n').filter(Boolean)).toEqual(['by-date', 'hosts', 'latest', 'snapshots', 'tags']);
    const inSnap = path.join(at, 'latest', src);
    const cat = asUser(['cat', path.join(inSnap, 'docs', 'deep', 'note.txt')]);
    expect(cat.code, cat.stderr).toBe(0);
    expect(cat.stdout.toString()).toBe('hello from the past\n');
    const catBig = asUser(['cat', path.join(inSnap, 'big.bin')]);
    expect(catBig.stdout.equals(big)).toBe(true);

    const copy = path.join(dir, 'copy');
    const cp = asUser(['cp', '-a', inSnap, copy]);
    expect(cp.code, cp.stderr).toBe(0);
    expect(spawnSync('diff', ['-r', '--no-dereference', copy, src]).status).toBe(0);
    for (const f of ['big.bin', 'private.txt', 'docs/deep/note.txt', 'docs']) {
      const a = fs.lstatSync(path.join(copy, f));
      const b = fs.lstatSync(path.join(src, f));
      expect([a.mode, a.mtimeMs, a.uid, a.size], f).toEqual([b.mode, b.mtimeMs, b.uid, b.size]);
    }
    expect(fs.readlinkSync(path.join(copy, 'link'))).toBe('docs/deep/note.txt');

    const byDate = path.join(at, 'by-date', '2026', '04', '01', '08:00:00', src);
    const find = asUser(['find', byDate, '-printf', '%P %y %m\\n']);
    expect(find.code, find.stderr).toBe(0);
    const listed = (out: string): string[] => out.split('\n').filter(Boolean).sort();
    expect(listed(find.stdout.toString())).toEqual(listed(spawnSync('find', [src, '-printf', '%P %y %m\\n']).stdout.toString()));

    const un = asUser([tool!, '-u', at]);
    expect(un.code, un.stderr).toBe(0);
    expect(await m.exited).toBe(0);
    expect(isMounted(at)).toBe(false);
    expect(m.stderr()).toContain('unmounted');
  }, 120_000);

  it('Ctrl-C unmounts; with a file held open the mount is detached and snap ends when it is closed', async () => {
    const at = path.join(dir, 'mnt2');
    fs.mkdirSync(at);
    fs.chownSync(at, NOBODY, NOBODY);
    // Plain: Ctrl-C, unmounted, exit status 0.
    let m = await mount(at);
    m.proc.kill('SIGINT');
    expect(await m.exited).toBe(0);
    expect(isMounted(at)).toBe(false);

    // A reader (as nobody) holds big.bin open across the Ctrl-C, then reads from it.
    m = await mount(at);
    const file = path.join(at, 'latest', src, 'big.bin');
    const script = `const fs=require('fs');const fd=fs.openSync(process.argv[1],'r');process.stdout.write('open\\n');process.stdin.once('data',()=>{const b=Buffer.alloc(100000);const n=fs.readSync(fd,b,0,b.length,1500000);process.stdout.write(require('crypto').createHash('sha256').update(b.subarray(0,n)).digest('hex')+'\\n');fs.closeSync(fd);process.exit(0);});`;
    const [c, ...args] = inNs([node, '-e', script, file]);
    const reader = spawn(c!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    live.push(reader);
    let said = '';
    reader.stdout!.on('data', (d: Buffer) => (said += d.toString()));
    const readerExit = new Promise<number | null>((resolve) => reader.on('exit', (code) => resolve(code)));
    await until('the reader to open the file', () => said.includes('open'));
    m.proc.kill('SIGINT');
    await until('the mount point to be detached', () => !isMounted(at));
    // snap says so once fusermount3 -z has answered; the reader closes only after that (else, on a
    // loaded machine, the session could end first and snap rightly not say it: the test's race).
    await until('snap to say the mount is detached', () => /detached/.test(m.stderr()));
    expect(m.proc.exitCode).toBeNull();
    reader.stdin!.write('go\n');
    expect(await readerExit).toBe(0);
    expect(said.trim().split('\n')[1]).toBe(createHash('sha256').update(big.subarray(1_500_000, 1_600_000)).digest('hex'));
    expect(await m.exited).toBe(0);
    expect(m.stderr()).toMatch(/detached/);
  }, 120_000);

  it('says what to install when there is no fusermount3', () => {
    const at = path.join(dir, 'mnt3');
    fs.mkdirSync(at);
    fs.chownSync(at, NOBODY, NOBODY);
    const empty = path.join(dir, 'empty-bin');
    fs.mkdirSync(empty);
    const r = asUser(['env', `PATH=${empty}`, node, cli, '--repo', repo, 'mount', at]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/needs fusermount3.*apt install fuse3.*SNAP_PERMISSION/);
    expect(isMounted(at)).toBe(false);
  });
});
