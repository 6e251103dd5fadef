// A real Ceph S3 gateway for the tests: one monitor, one memstore OSD and radosgw daemons from
// Debian's packages, on 127.0.0.1 at free ports, in a temporary folder. No mock anywhere.
//
// `sharedRadosgw()` gives every test file of a run the same cluster, started by the first file
// that asks (about 15 s) and stopped by test/servers-setup.ts at the end of the run, which kills
// every daemon recorded in $SNAP_SERVERS_DIR and removes the folder. A test that stops and
// restarts a gateway starts its own extra radosgw on the shared cluster (`startGateway`), so
// the other files' gateway is never disturbed.
//
// When the binaries are missing, the first caller tries to install the Debian packages (as CI
// does in .ci/run); only if that fails too is the reason returned, for a visible skip.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const CEPH_PACKAGES = ['radosgw', 'ceph-mon', 'ceph-osd', 'ceph-common', 'uuid-runtime'];
const BINARIES = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'ceph-authtool', 'monmaptool'];

export interface S3Account {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

function onPath(bin: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((d) => {
    try {
      fs.accessSync(path.join(d, bin), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export function missingBinaries(): string[] {
  return BINARIES.filter((b) => !onPath(b));
}

/** Install the packages if a binary is missing; the reason they are unavailable, or undefined. */
export function ensureCephInstalled(): string | undefined {
  if (missingBinaries().length === 0) return undefined;
  if (process.getuid?.() !== 0 || !onPath('apt-get')) {
    return `Ceph is not installed (missing ${missingBinaries().join(', ')}) and cannot be installed here (needs root and apt-get): apt-get install ${CEPH_PACKAGES.join(' ')}`;
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = (): ReturnType<typeof spawnSync> =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...CEPH_PACKAGES], { env, encoding: 'utf8', timeout: 900_000 });
  let r = install();
  if (r.status !== 0) {
    spawnSync('apt-get', ['update'], { env, encoding: 'utf8', timeout: 300_000 });
    r = install();
  }
  if (missingBinaries().length === 0) return undefined;
  const tail = `${r.stderr ?? ''}`.trim().split('\n').slice(-3).join(' / ');
  return `Ceph is not installed (missing ${missingBinaries().join(', ')}) and apt-get install failed: ${tail}`;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Where daemon pid files go, for the end-of-run teardown (test/servers-setup.ts). */
function pidDir(): string {
  const base = process.env.SNAP_SERVERS_DIR ?? path.join(os.tmpdir(), 'snap-servers-unmanaged');
  const d = path.join(base, 'pids');
  fs.mkdirSync(d, { recursive: true });
  return d;
}

/** Start a daemon in the foreground of its own process group, detached from the test worker; its pid is recorded for the teardown. */
export function daemon(cmd: string, args: string[], tag: string, o: { env?: NodeJS.ProcessEnv; log?: string; cwd?: string } = {}): number {
  const out = o.log === undefined ? 'ignore' : fs.openSync(o.log, 'a');
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', out, out], env: o.env ?? process.env, cwd: o.cwd });
  if (typeof out === 'number') fs.closeSync(out);
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  fs.writeFileSync(path.join(pidDir(), `${tag}-${child.pid}.pid`), String(child.pid));
  return child.pid;
}

/** Every process below `pid`, deepest last, from /proc. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(d));
      children.set(ppid, list);
    } catch {
      // the process ended while we looked
    }
  }
  const out: number[] = [];
  const visit = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      visit(c);
    }
  };
  visit(pid);
  return out;
}

/** Whether a process runs (a zombie, which a parent that is gone leaves until init reaps it, does not). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** Stop a daemon this harness started: SIGTERM, then SIGKILL after `graceMs`. */
export async function killDaemon(pid: number, graceMs = 5000): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    /* already gone */
  }
  const until = Date.now() + graceMs;
  while (alive(pid) && Date.now() < until) await sleep(50);
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    const killed = Date.now() + 10_000;
    while (alive(pid) && Date.now() < killed) await sleep(20);
  }
  for (const f of fs.readdirSync(pidDir())) if (f.endsWith(`-${pid}.pid`)) fs.rmSync(path.join(pidDir(), f), { force: true });
}

function run(cmd: string, args: string[], what: string, timeoutMs = 60_000): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0) throw new Error(`${what} failed (${r.error?.message ?? `exit ${r.status}`}): ${(r.stderr || r.stdout || '').trim().slice(-2000)}`);
  return r.stdout;
}

async function waitFor(what: string, timeoutMs: number, probe: () => Promise<boolean>, log?: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await probe()) return;
    await sleep(200);
  }
  const tail = log && fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').slice(-15).join('\n') : '';
  throw new Error(`${what} did not come up within ${timeoutMs / 1000} s\n${tail}`);
}

async function httpAnswers(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

export class Gateway {
  pid: number | undefined;
  constructor(readonly cluster: CephCluster, readonly id: string, readonly port: number) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.pid !== undefined && alive(this.pid)) return;
    this.pid = daemon('radosgw', [...this.cluster.confArgs, '-f', '-n', `client.rgw.${this.id}`, '--rgw-frontends', `beast endpoint=127.0.0.1:${this.port} tcp_nodelay=1`], `rgw.${this.id}`);
    await waitFor(`radosgw ${this.id} on port ${this.port}`, 60_000, () => httpAnswers(this.port), path.join(this.cluster.dir, 'log', `client.rgw.${this.id}.log`));
  }

  /** Freeze the gateway (SIGSTOP): its connections stay open, nothing answers; thaw() resumes it. */
  freeze(): void {
    if (this.pid !== undefined) process.kill(this.pid, 'SIGSTOP');
  }

  thaw(): void {
    if (this.pid !== undefined) process.kill(this.pid, 'SIGCONT');
  }

  /** Stop the gateway (SIGKILL: as if it crashed, `graceful` for SIGTERM). */
  async stop(graceful = false): Promise<void> {
    if (this.pid === undefined) return;
    if (graceful) await killDaemon(this.pid);
    else await killDaemon(this.pid, 0);
    this.pid = undefined;
  }
}

export class CephCluster {
  readonly conf: string;
  private readonly pids: number[] = [];
  private constructor(readonly dir: string) {
    this.conf = path.join(dir, 'ceph.conf');
  }

  /** A cluster started elsewhere (by the run's first test worker), to add gateways or users to. */
  static attach(dir: string): CephCluster {
    return new CephCluster(dir);
  }

  get confArgs(): string[] {
    return ['-c', this.conf];
  }

  /** One monitor and one memstore OSD (in memory, allocated as written), cephx on, in `dir` (made empty first). */
  static async start(dir: string, memstoreBytes = 4 * 1024 ** 3): Promise<CephCluster> {
    const c = new CephCluster(dir);
    fs.rmSync(dir, { recursive: true, force: true });
    for (const d of ['mon/ceph-a', 'osd/ceph-0', 'run', 'log']) fs.mkdirSync(path.join(dir, d), { recursive: true });
    const monPort = await freePort();
    const fsid = randomUUID();
    fs.writeFileSync(
      c.conf,
      [
        '[global]',
        `fsid = ${fsid}`,
        `mon host = v2:127.0.0.1:${monPort}`,
        'public network = 127.0.0.0/8',
        `keyring = ${dir}/$cluster.$name.keyring`,
        'osd pool default size = 1',
        'osd pool default min size = 1',
        'osd pool default pg num = 8',
        'osd pool default pgp num = 8',
        'mon allow pool size one = true',
        'mon warn on pool no redundancy = false',
        // A crowded disk must not stop the monitor (it refuses to run below 5% free by default).
        'mon data avail crit = 0',
        'mon data avail warn = 1',
        'osd crush chooseleaf type = 0',
        `run dir = ${dir}/run`,
        `log file = ${dir}/log/$name.log`,
        `admin socket = ${dir}/run/$name.asok`,
        'ms bind ipv4 = true',
        '[mon]',
        `mon data = ${dir}/mon/ceph-$id`,
        `keyring = ${dir}/mon/ceph-$id/keyring`,
        '[osd]',
        `osd data = ${dir}/osd/ceph-$id`,
        `keyring = ${dir}/osd/ceph-$id/keyring`,
        'osd objectstore = memstore',
        `memstore device bytes = ${memstoreBytes}`,
        '[client]',
        `rgw data = ${dir}/rgw-$id`,
        'rgw enable usage log = false',
        // Deleted objects' data goes back to the (memory) store within a minute, not 2 hours.
        'rgw gc obj min wait = 30',
        'rgw gc processor period = 30',
        '',
      ].join('\n'),
    );
    const at = (f: string): string => path.join(dir, f);
    run('ceph-authtool', ['--create-keyring', at('mon.all'), '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *'], 'ceph-authtool mon');
    run('ceph-authtool', ['--create-keyring', at('ceph.client.admin.keyring'), '--gen-key', '-n', 'client.admin', '--cap', 'mon', 'allow *', '--cap', 'osd', 'allow *', '--cap', 'mgr', 'allow *'], 'ceph-authtool admin');
    run('ceph-authtool', [at('mon.all'), '--import-keyring', at('ceph.client.admin.keyring')], 'ceph-authtool import');
    run('monmaptool', ['--create', '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, '--fsid', fsid, at('monmap')], 'monmaptool');
    run('ceph-mon', [...c.confArgs, '--mkfs', '-i', 'a', '--monmap', at('monmap'), '--keyring', at('mon.all')], 'ceph-mon --mkfs');
    c.pids.push(daemon('ceph-mon', [...c.confArgs, '-f', '-i', 'a'], 'ceph-mon'));
    const osdUuid = randomUUID();
    run('timeout', ['60', 'ceph', ...c.confArgs, 'osd', 'new', osdUuid], 'ceph osd new');
    run('ceph-osd', [...c.confArgs, '-i', '0', '--mkfs', '--mkkey', '--osd-uuid', osdUuid, '--no-mon-config'], 'ceph-osd --mkfs');
    run('timeout', ['60', 'ceph', ...c.confArgs, 'auth', 'add', 'osd.0', 'osd', 'allow *', 'mon', 'allow profile osd', '-i', at('osd/ceph-0/keyring')], 'ceph auth add osd.0');
    c.pids.push(daemon('ceph-osd', [...c.confArgs, '-f', '-i', '0'], 'ceph-osd'));
    return c;
  }

  /** A new radosgw daemon on this cluster (its own cephx key), started, on a free port. */
  async startGateway(id: string): Promise<Gateway> {
    const keyring = path.join(this.dir, `ceph.client.rgw.${id}.keyring`);
    run('ceph-authtool', ['--create-keyring', keyring, '--gen-key', '-n', `client.rgw.${id}`, '--cap', 'mon', 'allow rw', '--cap', 'osd', 'allow rwx'], 'ceph-authtool rgw');
    run('timeout', ['60', 'ceph', ...this.confArgs, 'auth', 'add', `client.rgw.${id}`, '-i', keyring], `ceph auth add client.rgw.${id}`);
    const gw = new Gateway(this, id, await freePort());
    await gw.start();
    return gw;
  }

  /** An S3 user with fresh random keys. */
  createUser(uid: string): { accessKeyId: string; secretAccessKey: string } {
    const accessKeyId = `K${randomBytes(9).toString('hex').toUpperCase()}`;
    const secretAccessKey = randomBytes(24).toString('base64url');
    run('timeout', ['60', 'radosgw-admin', ...this.confArgs, 'user', 'create', `--uid=${uid}`, `--display-name=${uid}`, `--access-key=${accessKeyId}`, `--secret-key=${secretAccessKey}`], `radosgw-admin user create ${uid}`);
    return { accessKeyId, secretAccessKey };
  }

  async stop(): Promise<void> {
    for (const pid of this.pids.splice(0).reverse()) await killDaemon(pid);
  }
}

export interface SharedRadosgw {
  /** The gateway every test file uses; its owner has `account`'s keys. */
  account: S3Account;
  /** A second user that owns nothing (for permission tests). */
  stranger: { accessKeyId: string; secretAccessKey: string };
  clusterDir: string;
  conf: string;
}

let shared: Promise<SharedRadosgw | string> | undefined;

/**
 * The run's shared radosgw (started by the first caller in any worker), or the reason it cannot
 * run here. Callers wait for a starter in another worker for up to 15 minutes (an install).
 */
export function sharedRadosgw(): Promise<SharedRadosgw | string> {
  shared ??= startOrJoin();
  return shared;
}

async function startOrJoin(): Promise<SharedRadosgw | string> {
  const base = process.env.SNAP_SERVERS_DIR;
  if (!base) return 'SNAP_SERVERS_DIR is not set: run the tests through vitest (test/servers-setup.ts starts and stops servers)';
  const dir = path.join(base, 'radosgw');
  const ready = path.join(dir, 'ready.json');
  const failed = path.join(dir, 'failed.txt');
  let starter = true;
  try {
    fs.mkdirSync(dir);
  } catch {
    starter = false;
  }
  if (starter) {
    try {
      const why = ensureCephInstalled();
      if (why) {
        fs.writeFileSync(failed, why);
        return why;
      }
      const cluster = await CephCluster.start(path.join(dir, 'ceph'));
      const gw = await cluster.startGateway('a');
      const owner = cluster.createUser('snap-test');
      const stranger = cluster.createUser('stranger');
      const info: SharedRadosgw = { account: { endpoint: gw.endpoint, region: 'us-east-1', ...owner }, stranger, clusterDir: cluster.dir, conf: cluster.conf };
      fs.writeFileSync(`${ready}.tmp`, JSON.stringify(info));
      fs.renameSync(`${ready}.tmp`, ready);
      return info;
    } catch (e) {
      const msg = `starting radosgw failed: ${(e as Error).message}`;
      fs.writeFileSync(failed, msg);
      throw new Error(msg);
    }
  }
  const until = Date.now() + 900_000;
  while (Date.now() < until) {
    if (fs.existsSync(ready)) return JSON.parse(fs.readFileSync(ready, 'utf8')) as SharedRadosgw;
    if (fs.existsSync(failed)) {
      const msg = fs.readFileSync(failed, 'utf8');
      if (msg.startsWith('starting radosgw failed')) throw new Error(msg);
      return msg;
    }
    await sleep(250);
  }
  throw new Error('timed out waiting for another test worker to start radosgw');
}

/** The shared cluster as an object for starting extra gateways (restart tests). */
export function sharedCluster(info: SharedRadosgw): CephCluster {
  return CephCluster.attach(info.clusterDir);
}
