// Start `snap ui` as users do (the built CLI, a real process on a free loopback port) and talk
// HTTP to it with full control of the headers (Host, Origin, cookies).
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import { CLI, CLI_NODE_FLAGS, ROOT } from './cli.js';

export interface UiProcess {
  url: string;
  origin: string;
  port: number;
  proc: ChildProcess;
  stderr(): string;
  stop(): Promise<number | null>;
}

export async function startUi(repo: string, args: string[] = [], env: Record<string, string> = {}): Promise<UiProcess> {
  const proc = spawn(process.execPath, [...CLI_NODE_FLAGS, CLI, '--repo', repo, 'ui', '--no-open', '--listen', '127.0.0.1:0', ...args], {
    cwd: ROOT,
    env: { ...process.env, SNAP_REPO: '', XDG_DATA_HOME: '', DISPLAY: '', WAYLAND_DISPLAY: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`snap ui printed no link in 30 s; stderr: ${err}`)), 30_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /(http:\/\/\S+\?token=\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`snap ui exited with ${code}: ${err}`));
    });
  });
  const origin = url.slice(0, url.indexOf('/?token='));
  return {
    url,
    origin,
    port: Number(new URL(origin).port),
    proc,
    stderr: () => err,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve(proc.exitCode);
        proc.once('exit', (code) => resolve(code));
        proc.kill('SIGINT');
      }),
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json(): any;
}

/** One raw HTTP request: `rawPath` goes on the request line exactly as given. */
export function request(port: number, rawPath: string, o: { method?: string; headers?: Record<string, string>; body?: string; noHost?: boolean } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: o.method ?? 'GET', path: rawPath, headers: o.noHost ? { ...o.headers } : { host: `127.0.0.1:${port}`, ...o.headers }, setHost: !o.noHost, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const body = Buffer.concat(parts);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}

/** Trades the link's one-time token for the session cookie (`name=value`). */
export async function login(ui: UiProcess): Promise<string> {
  const u = new URL(ui.url);
  const r = await request(ui.port, `${u.pathname}${u.search}`);
  if (r.status !== 303) throw new Error(`login answered ${r.status}: ${r.body.toString()}`);
  const set = r.headers['set-cookie']?.[0] ?? '';
  return set.split(';')[0]!;
}
