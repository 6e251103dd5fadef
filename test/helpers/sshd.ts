// A real OpenSSH server for the SFTP backend's tests: `sshd -D -f <temp sshd_config>` on a free
// port of 127.0.0.1, with a host key and a user key made for the run, a known_hosts that holds the
// host key, and an ssh_config for the client (OpenSSH reads ~/.ssh from the passwd home, not
// $HOME, so tests pass `ssh -F <config>`). It logs in as the user running the tests: root here and
// in CI (PermitRootLogin prohibit-password), anyone else otherwise (an unprivileged sshd can only
// log in its own user). StrictModes is off because the key files live under the run's temporary
// folder in /tmp, whose mode 1777 StrictModes refuses. stop() kills the listener and every
// session process under it (sessions call setsid, so a process group kill would miss them);
// start() starts it again on the same port, with the same keys.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { descendants, freePort } from './radosgw.js'; // a port nobody listens on, the processes under one (the S3 tests' helper has them)

const SSHD = '/usr/sbin/sshd';
/** The name known_hosts files use for the test server, whatever port (or proxy) the client dials. */
export const HOST_KEY_ALIAS = 'snap-test-sshd';

function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** Why the SFTP tests cannot run here, or undefined when they can. */
export function sshdMissing(): string | undefined {
  if (!fs.existsSync(SSHD)) return `${SSHD} is not installed (Debian: apt-get install openssh-server; .ci/run installs it)`;
  for (const c of ['ssh', 'ssh-keygen']) if (!which(c)) return `${c} is not installed (Debian: apt-get install openssh-client)`;
  return undefined;
}

function keygen(file: string): void {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', path.basename(file), '-f', file]);
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
}

/** `SHA256:...` of a public key file, as ssh prints it. */
export function fingerprint(pubFile: string): string {
  const r = spawnSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', pubFile], { encoding: 'utf8' });
  const fp = /SHA256:\S+/.exec(r.stdout)?.[0];
  if (!fp) throw new Error(`ssh-keygen -l failed: ${r.stderr}`);
  return fp;
}

async function waitForBanner(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.setTimeout(1000);
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString('latin1').startsWith('SSH-'));
      });
      s.once('error', () => resolve(false));
      s.once('timeout', () => {
        s.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd did not answer on port ${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface ClientConfig {
  /** known_hosts to use instead of the one holding the server's key. */
  knownHosts?: string;
  /** Another identity file instead of the authorized one. */
  identity?: string;
  /** Keys from the ssh-agent at this socket instead of a key file. */
  agent?: string;
  /** More ssh_config lines for every host. */
  extra?: string[];
  /** A `Host` block of its own, before the one for every host. */
  host?: string[];
}

export class TestSshd {
  readonly user = os.userInfo().username;
  readonly hostKey: string;
  readonly userKey: string;
  readonly knownHosts: string;
  /** The starting folder of SFTP sessions (internal-sftp -d): what `sftp:.../~/PATH` is relative to. */
  readonly home: string;
  readonly hostKeyFingerprint: string;
  private proc: ChildProcess | undefined;
  private configs = 0;
  log: string;

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {
    this.hostKey = path.join(dir, 'host_ed25519_key');
    this.userKey = path.join(dir, 'user_ed25519_key');
    this.knownHosts = path.join(dir, 'known_hosts');
    this.home = path.join(dir, 'home');
    this.log = path.join(dir, 'sshd.log');
    keygen(this.hostKey);
    keygen(this.userKey);
    fs.mkdirSync(this.home, { mode: 0o700 });
    fs.writeFileSync(path.join(dir, 'authorized_keys'), fs.readFileSync(`${this.userKey}.pub`), { mode: 0o600 });
    fs.writeFileSync(this.knownHosts, `${HOST_KEY_ALIAS} ${fs.readFileSync(`${this.hostKey}.pub`, 'utf8')}`, { mode: 0o600 });
    this.hostKeyFingerprint = fingerprint(`${this.hostKey}.pub`);
    this.writeServerConfig();
  }

  static async start(): Promise<TestSshd> {
    const missing = sshdMissing();
    if (missing) throw new Error(missing);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-sshd-'));
    fs.chmodSync(dir, 0o700);
    const d = new TestSshd(dir, await freePort());
    await d.start();
    return d;
  }

  private writeServerConfig(): void {
    const lines = [
      `Port ${this.port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${this.hostKey}`,
      'PidFile none',
      `AuthorizedKeysFile ${path.join(this.dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      `AllowUsers ${this.user}`,
      'AllowTcpForwarding no',
      'X11Forwarding no',
      'PrintMotd no',
      'MaxStartups 100',
      'LogLevel VERBOSE',
      `Subsystem sftp internal-sftp -d ${this.home}`,
      `Subsystem sftp-readonly internal-sftp -R -d ${this.home}`,
    ];
    const file = path.join(this.dir, 'sshd_config');
    // OpenSSH 9.8+ slows down clients whose connections fail (the fault tests cut many): off, where known
    fs.writeFileSync(file, [...lines, 'PerSourcePenalties no'].join('\n') + '\n', { mode: 0o600 });
    // sshd -t wants the privilege separation folder too (a fresh /run has none until start() made it)
    if (process.getuid?.() === 0) fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    if (spawnSync(SSHD, ['-t', '-f', file]).status !== 0) fs.writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
    const t = spawnSync(SSHD, ['-t', '-f', file], { encoding: 'utf8' });
    if (t.status !== 0) throw new Error(`sshd -t rejected the test configuration: ${t.stderr}`);
  }

  /** Start sshd (again) and wait until it answers. */
  async start(): Promise<void> {
    if (this.proc) return;
    if (process.getuid?.() === 0) fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation folder
    const out = fs.openSync(this.log, 'a');
    this.proc = spawn(SSHD, ['-D', '-e', '-f', path.join(this.dir, 'sshd_config')], { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    const proc = this.proc;
    proc.on('exit', () => {
      if (this.proc === proc) this.proc = undefined;
    });
    await waitForBanner(this.port, 10_000);
  }

  /** Kill sshd and every session under it (SIGKILL: a crash; SIGTERM: a stop). */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.proc;
    if (!proc?.pid) return;
    this.proc = undefined;
    const all = [proc.pid, ...descendants(proc.pid)];
    const exited = new Promise<void>((r) => (proc.exitCode !== null || proc.signalCode !== null ? r() : proc.once('exit', () => r())));
    for (const pid of all) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
    await exited;
  }

  /**
   * Freeze sshd and every session under it (SIGSTOP): connections stay open and new ones are
   * accepted by the kernel, but nothing answers, as a server that hangs. thaw() resumes them.
   */
  freeze(): void {
    this.signalAll('SIGSTOP');
  }

  thaw(): void {
    this.signalAll('SIGCONT');
  }

  private signalAll(signal: NodeJS.Signals): void {
    const pid = this.proc?.pid;
    if (!pid) return;
    for (const p of [pid, ...descendants(pid)]) {
      try {
        process.kill(p, signal);
      } catch {
        // already gone
      }
    }
  }

  /** An ssh_config for the client; returns its path. */
  clientConfig(o: ClientConfig = {}): string {
    const file = path.join(this.dir, `ssh_config.${++this.configs}`);
    const lines = [
      ...(o.host ?? []),
      'Host *',
      `  HostKeyAlias ${HOST_KEY_ALIAS}`,
      `  UserKnownHostsFile ${o.knownHosts ?? this.knownHosts}`,
      '  GlobalKnownHostsFile /dev/null',
      '  CheckHostIP no',
      '  UpdateHostKeys no',
      ...(o.agent
        ? [`  IdentityAgent ${o.agent}`, '  IdentityFile none']
        : [`  IdentityFile ${o.identity ?? this.userKey}`, '  IdentitiesOnly yes', '  IdentityAgent none']),
      '  BatchMode yes',
      '  ControlMaster no',
      '  ControlPath none',
      ...(o.extra ?? []).map((l) => `  ${l}`),
    ];
    fs.writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
    return file;
  }

  /** `ssh -F <config>`: the prefix SftpBackend's sshCommand takes. */
  sshCommand(o: ClientConfig = {}): string[] {
    return ['ssh', '-F', this.clientConfig(o)];
  }

  /** A complete command (SftpBackend's sftpCommand) that starts `subsystem` on the server. */
  sftpCommand(subsystem: string, o: ClientConfig = {}): string[] {
    return [...this.sshCommand(o), '-p', String(this.port), '-l', this.user, '-s', '--', '127.0.0.1', subsystem];
  }

  /** `sftp:USER@127.0.0.1:PORT/PATH` (PATH absolute, or `~/...`). */
  location(remotePath: string, port = this.port): string {
    return `sftp:${this.user}@127.0.0.1:${port}${remotePath.startsWith('~') ? `/${remotePath}` : remotePath}`;
  }

  async close(): Promise<void> {
    await this.stop('SIGTERM');
    if (!process.env.SNAP_KEEP_TMP) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * One sshd for the tests of a describe block: started before them, stopped after them, once the
 * backends they opened (`track`) are closed.
 */
export function sshdForTests(): { readonly sshd: TestSshd; track<T extends { close(): Promise<void> }>(b: T): T } {
  let sshd: TestSshd | undefined;
  const open: { close(): Promise<void> }[] = [];
  beforeAll(async () => {
    sshd = await TestSshd.start();
  });
  afterAll(async () => {
    await Promise.all(open.map((b) => b.close()));
    await sshd?.close();
  });
  return {
    get sshd(): TestSshd {
      if (!sshd) throw new Error('sshd did not start');
      return sshd;
    },
    track<T extends { close(): Promise<void> }>(b: T): T {
      open.push(b);
      return b;
    },
  };
}
