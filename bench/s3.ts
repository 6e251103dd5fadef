// `npm run bench:s3`: put/get throughput of 16 MiB packs through S3Backend against a local
// Ceph radosgw (started here, in a temporary folder, and stopped at the end; or an existing one
// with --endpoint URL --bucket NAME and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY).
// Prints a Markdown table of MiB/s per operation: the median and range over rounds.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { S3Backend } from '../src/backend/s3.js';
import { CephCluster, type Gateway, ensureCephInstalled } from '../test/helpers/radosgw.js';

const MiB = 1 << 20;
const PACK = 16 * MiB;

interface Args {
  packs: number;
  rounds: number;
  endpoint?: string;
  bucket: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { packs: 16, rounds: 3, bucket: 'bench' };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    if (argv[i] === '--packs' && v) a.packs = Number(v), i++;
    else if (argv[i] === '--rounds' && v) a.rounds = Number(v), i++;
    else if (argv[i] === '--endpoint' && v) a.endpoint = v, i++;
    else if (argv[i] === '--bucket' && v) a.bucket = v, i++;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return a;
}

async function inParallel(n: number, count: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < count) await fn(next++);
  }));
}

async function* pieces(buf: Buffer, size = MiB): AsyncIterable<Buffer> {
  for (let at = 0; at < buf.length; at += size) yield buf.subarray(at, at + size);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  let cluster: CephCluster | undefined;
  let gateway: Gateway | undefined;
  let endpoint = a.endpoint;
  let credentials = { accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? '', secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? '' };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-bench-s3-'));
  process.env.SNAP_SERVERS_DIR = dir; // pid files of the daemons started here
  try {
    if (!endpoint) {
      const why = ensureCephInstalled();
      if (why) throw new Error(why);
      cluster = await CephCluster.start(path.join(dir, 'ceph'), 4 * 1024 ** 3);
      gateway = await cluster.startGateway('bench');
      endpoint = gateway.endpoint;
      credentials = cluster.createUser('bench');
    }
    const packs = Array.from({ length: a.packs }, () => randomBytes(PACK));
    const results = new Map<string, number[]>();
    const record = (op: string, seconds: number): void => {
      results.set(op, [...(results.get(op) ?? []), (a.packs * PACK) / MiB / seconds]);
    };
    const time = async (op: string, fn: () => Promise<void>): Promise<void> => {
      const t = performance.now();
      await fn();
      record(op, (performance.now() - t) / 1000);
    };
    for (let round = 0; round < a.rounds; round++) {
      const b = new S3Backend({ location: `s3:${endpoint}/${a.bucket}/r${round}-${randomBytes(3).toString('hex')}`, credentials });
      await b.ensureBucket();
      const name = (i: number, kind: string): string => `data/${kind}/${String(i).padStart(4, '0')}`;
      await time('put, one at a time', () => inParallel(1, a.packs, (i) => b.put(name(i, 'a'), packs[i]!)));
      await time('get, one at a time', () => inParallel(1, a.packs, async (i) => void (await b.get(name(i, 'a')))));
      await time('put, 4 at a time', () => inParallel(4, a.packs, (i) => b.put(name(i, 'b'), packs[i]!)));
      await time('get, 4 at a time', () => inParallel(4, a.packs, async (i) => void (await b.get(name(i, 'b')))));
      await time('putStream (8 MiB parts, 2 at a time), one at a time', () => inParallel(1, a.packs, (i) => b.putStream(name(i, 'c'), pieces(packs[i]!), PACK)));
      await time('getStream, one at a time', () => inParallel(1, a.packs, async (i) => {
        for await (const _ of b.getStream(name(i, 'c'))) void _;
      }));
      await time('getRange of 1 MiB pieces, 8 at a time', () => inParallel(8, a.packs * 16, async (k) => void (await b.getRange(name(k >> 4, 'a'), (k & 15) * MiB, MiB))));
      for (const kind of ['a', 'b', 'c']) for (let i = 0; i < a.packs; i++) await b.delete(name(i, kind));
      await b.close();
      process.stderr.write(`round ${round + 1}/${a.rounds} done\n`);
    }
    console.log(`${a.packs} packs of 16 MiB, ${a.rounds} rounds, MiB/s: median [min–max]\n`);
    console.log('| operation | MiB/s |\n| --- | --- |');
    for (const [op, xs] of results) console.log(`| ${op} | ${median(xs).toFixed(0)} [${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}] |`);
  } finally {
    await gateway?.stop(true);
    await cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
