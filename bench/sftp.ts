// SFTP backend throughput over loopback: 16 MiB puts and gets through SftpBackend (the system ssh
// and a real sshd started for the run, test/helpers/sshd.ts), for several numbers of requests in
// flight, and OpenSSH's own `sftp` client moving the same file, for reference. Then the same
// through a proxy that holds every chunk `--delay-ms` in each direction (a round trip of twice
// that, like a link to another city), where the requests in flight matter.
//
//   npm run bench:sftp [-- --rounds 5 --mib 16 --delay-ms 5]
//
// Prints a markdown table for docs/performance.md ("SFTP backend"). Medians over the rounds; the
// session is open before timing starts (connecting costs ~0.1-0.7 s and is reported separately).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { loadavg } from 'node:os';
import * as path from 'node:path';
import { SftpBackend } from '../src/backend/sftp.js';
import { TestSshd, sshdMissing } from '../test/helpers/sshd.js';
import { TcpFaultProxy } from '../test/helpers/tcp-fault-proxy.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

const ROUNDS = arg('rounds', 5);
const MIB = arg('mib', 16);
const DELAY_MS = arg('delay-ms', 5);
const SIZE = MIB * 1024 * 1024;

const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const mbps = (ms: number): string => `${(SIZE / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;

async function* pieces(data: Buffer, size: number): AsyncIterable<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function main(): Promise<void> {
  const missing = sshdMissing();
  if (missing) {
    console.error(`bench/sftp: ${missing}`);
    process.exit(1);
  }
  const sshd = await TestSshd.start();
  const data = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i); // incompressible enough for ssh
  const rows: string[] = [];
  try {
    const slow = await TcpFaultProxy.start(sshd.port, () => ({ kind: 'delay', ms: DELAY_MS }));
    const links = [
      { label: 'loopback', port: sshd.port },
      { label: `loopback + ${DELAY_MS} ms each way`, port: slow.port },
    ];
    const cases = links.flatMap((link) => [1, 4, 8, 16, 32].map((pipeline) => ({ link, pipeline })));
    for (const { link, pipeline } of cases) {
      const b = new SftpBackend(sshd.location(path.join(sshd.dir, 'bench'), link.port), { sshCommand: sshd.sshCommand(), pipeline });
      const connect = await time(() => b.stat('config'));
      const r = { put: [] as number[], get: [] as number[], putStream: [] as number[], getStream: [] as number[] };
      for (let i = 0; i < ROUNDS; i++) {
        r.put.push(await time(() => b.put('data/00/blob', data)));
        r.get.push(await time(() => b.get('data/00/blob')));
        r.putStream.push(await time(() => b.putStream('data/00/blob', pieces(data, 1 << 20), SIZE)));
        r.getStream.push(await time(async () => {
          for await (const _ of b.getStream('data/00/blob'));
        }));
      }
      await b.close();
      const cell = (a: number[]): string => `${median(a).toFixed(0)} ms (${mbps(median(a))})`;
      rows.push(`| ${link.label} | SftpBackend, ${pipeline} in flight | ${cell(r.put)} | ${cell(r.get)} | ${cell(r.putStream)} | ${cell(r.getStream)} | ${connect.toFixed(0)} ms |`);
    }
    // OpenSSH's sftp client: a batch of 1 transfer and of 4, so the difference is 3 transfers without connecting
    const local = path.join(sshd.dir, 'local.bin');
    fs.writeFileSync(local, data);
    const remote = path.join(sshd.dir, 'bench', 'sftp-client.bin');
    const batch = (n: number, op: 'put' | 'get'): number => {
      const file = path.join(sshd.dir, `batch-${op}-${n}`);
      const line = op === 'put' ? `put ${local} ${remote}` : `get ${remote} ${local}.got`;
      fs.writeFileSync(file, `${Array(n).fill(line).join('\n')}\n`);
      const t = performance.now();
      const res = spawnSync('sftp', ['-q', '-F', sshd.clientConfig(), '-P', String(sshd.port), '-b', file, `${sshd.user}@127.0.0.1`], { stdio: 'ignore' });
      if (res.status !== 0) throw new Error(`sftp -b ${file} failed`);
      return performance.now() - t;
    };
    const per = (op: 'put' | 'get'): number => median(Array.from({ length: ROUNDS }, () => (batch(4, op) - batch(1, op)) / 3));
    const sp = per('put');
    const sg = per('get');
    rows.push(`| loopback | OpenSSH \`sftp\` client (its defaults) | ${sp.toFixed(0)} ms (${mbps(sp)}) | ${sg.toFixed(0)} ms (${mbps(sg)}) | | | |`);
    await slow.close();
  } finally {
    await sshd.close();
  }
  const ssh = spawnSync('ssh', ['-V'], { encoding: 'utf8' }).stderr.trim();
  console.log(`${MIB} MiB, median of ${ROUNDS}, ${new Date().toISOString()}, ${ssh}, node ${process.version}, load average ${loadavg()[0]!.toFixed(1)}\n`);
  console.log('| link | client | put | get | putStream (1 MiB pieces) | getStream | connect |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) console.log(r);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
