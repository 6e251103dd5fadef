// A real Azurite (Microsoft's open-source Azure Storage server, the npm devDependency `azurite`)
// for the tests: its blob service on 127.0.0.1 at a free port, storing in a temporary folder,
// started with --disableTelemetry (without it Azurite reports to a public address; tests talk to
// loopback only). It needs neither --loose nor --skipApiVersionCheck: the SDK's API version is
// one it knows, and snap sends no header it does not support. The storage account is the test's
// own (a random name and key, given through AZURITE_ACCOUNTS), not the well-known emulator one.
//
// Each test file starts its own (about a second) and closes it; test/servers-setup.ts kills
// any left at the end of the run (its pid is recorded like radosgw's).
//
// stop() ends it as a crash would for its clients, with what it acknowledged kept: SIGTERM (it
// stops answering, saves its metadata and says so), then SIGKILL, which resets every connection
// still open. A bare SIGKILL would also lose what it acknowledged in its last 5 s: Azurite keeps
// its metadata in a LokiJS database saved every 5 s, a weakness of the emulator that Azure's
// durable storage does not have.
//
// freeze() stops it and any process under it (SIGSTOP): its connections stay open and the kernel
// still accepts new ones, but nothing answers, as a server that hangs; thaw() resumes it.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AzureBackend, type AzureBackendOptions } from '../../src/backend/azure.js';
import { tmpDir } from './cli.js';
import { alive, daemon, descendants, freePort, killDaemon } from './radosgw.js';

export const AZURE_TEST_RETRY = { attempts: 5, baseDelayMs: 20, maxDelayMs: 400 };

const MAIN = fileURLToPath(new URL('../../node_modules/azurite/dist/src/blob/main.js', import.meta.url));

/** Why Azurite cannot run here, or undefined. */
export function azuriteMissing(): string | undefined {
  return fs.existsSync(MAIN) ? undefined : `azurite is not installed (npm ci installs the devDependency): ${MAIN} is missing`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class TestAzurite {
  pid: number | undefined;
  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly account: string,
    readonly key: string,
    readonly inMemory: boolean,
  ) {}

  /** `inMemory`: keep blobs in memory (faster; lost when it stops, so not for restart tests). */
  static async start(o: { inMemory?: boolean } = {}): Promise<TestAzurite> {
    const dir = tmpDir('snap-azurite-');
    const a = new TestAzurite(dir, await freePort(), `snap${randomBytes(6).toString('hex')}`, randomBytes(64).toString('base64'), o.inMemory ?? false);
    await a.start();
    return a;
  }

  get log(): string {
    return path.join(this.dir, 'azurite.log');
  }

  /** The account's blob service URL (path style, as Azurite serves it on an IP address). */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}/${this.account}`;
  }

  get connectionString(): string {
    return `DefaultEndpointsProtocol=http;AccountName=${this.account};AccountKey=${this.key};BlobEndpoint=${this.endpoint};`;
  }

  /** (Re)start on the same port and folder: what it stored is still there. */
  async start(): Promise<void> {
    if (this.pid !== undefined && alive(this.pid)) return;
    const store = this.inMemory ? ['--inMemoryPersistence'] : ['--location', path.join(this.dir, 'data')];
    const args = [MAIN, '--blobHost', '127.0.0.1', '--blobPort', String(this.port), ...store, '--disableTelemetry', '--silent'];
    const env = { ...process.env, AZURITE_ACCOUNTS: `${this.account}:${this.key}` };
    this.pid = daemon(process.execPath, args, 'azurite', { env, log: this.log, cwd: this.dir });
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      try {
        const res = await fetch(`http://127.0.0.1:${this.port}/`, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        return;
      } catch {
        if (!alive(this.pid)) break;
        await sleep(100);
      }
    }
    throw new Error(`azurite did not come up on port ${this.port}:\n${fs.existsSync(this.log) ? fs.readFileSync(this.log, 'utf8').slice(-2000) : ''}`);
  }

  /** Stop as described at the top: its connections reset, what it acknowledged kept. */
  async stop(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) return;
    this.pid = undefined;
    const closed = (): number => (fs.readFileSync(this.log, 'utf8').match(/successfully closed/g) ?? []).length;
    const before = closed();
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    const until = Date.now() + 10_000;
    while (closed() === before && alive(pid) && Date.now() < until) await sleep(20);
    await killDaemon(pid, 0);
  }

  /** Freeze it (SIGSTOP on it and every process under it): connections stay open, nothing answers. */
  freeze(): void {
    this.signalAll('SIGSTOP');
  }

  /** Resume what freeze() stopped (SIGCONT). */
  thaw(): void {
    this.signalAll('SIGCONT');
  }

  private signalAll(signal: NodeJS.Signals): void {
    const pid = this.pid;
    if (pid === undefined) return;
    for (const p of [pid, ...descendants(pid)]) {
      try {
        process.kill(p, signal);
      } catch {
        // already gone
      }
    }
  }

  async close(): Promise<void> {
    this.thaw(); // a frozen Azurite would not act on the SIGTERM of stop()
    await this.stop();
    if (!process.env.SNAP_KEEP_TMP) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  location(container: string, prefix = `t-${randomBytes(6).toString('hex')}`): string {
    return `azure:${this.account}/${container}${prefix ? `/${prefix}` : ''}`;
  }

  /** A backend on `container` under a fresh prefix, signing with the account key, short retries. */
  backend(container: string, o: Partial<AzureBackendOptions> & { prefix?: string } = {}): AzureBackend {
    return new AzureBackend({ location: this.location(container, o.prefix), auth: { kind: 'key', key: this.key }, endpoint: this.endpoint, retry: AZURE_TEST_RETRY, timeoutMs: 30_000, ...o });
  }

  /** The environment of one CLI client: the account key and endpoint, a cache and home of its own. */
  client(): Record<string, string> {
    const home = tmpDir('snap-client-');
    return { AZURE_STORAGE_KEY: this.key, AZURE_STORAGE_ENDPOINT: this.endpoint, XDG_CACHE_HOME: path.join(home, 'cache'), HOME: home };
  }
}
