// `npm run bench:remote-index`: a fresh client's first `snap list` on an S3 repository of many
// packs (docs/performance.md, "A fresh client on a repository of 10,000 packs"). Against a local
// Ceph radosgw started here in a temporary folder (or an existing one: --endpoint URL --bucket NAME
// with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), it
// 1. writes a repository of --packs N packs (default 10,000) quickly: `packSize` 1 in its config
//    makes every object a pack of its own, so N small blobs are N packs, then one snapshot naming
//    them all (one file of N chunks); the packs' index file is written before the record, as a
//    backup writes it;
// 2. times `snap --repo s3:... list` with a new, empty cache folder for each build given with
//    --cli PATH (default this build's dist/cli/main.js; give main's to compare), --rounds times.
// A build without index files (before they existed) ignores `packindex/` and reads every header.
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { S3Backend } from '../src/backend/s3.js';
import { Repository } from '../src/repo/repository.js';
import { encodeTree } from '../src/model/tree.js';
import { CephCluster, type Gateway, ensureCephInstalled } from '../test/helpers/radosgw.js';
import { currentHost } from '../src/cli/host.js';

interface Args {
  packs: number;
  rounds: number;
  endpoint?: string;
  bucket: string;
  clis: string[];
}

function parseArgs(argv: string[]): Args {
  const a: Args = { packs: 10_000, rounds: 3, bucket: 'bench-index', clis: [] };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    if (argv[i] === '--packs' && v) a.packs = Number(v), i++;
    else if (argv[i] === '--rounds' && v) a.rounds = Number(v), i++;
    else if (argv[i] === '--endpoint' && v) a.endpoint = v, i++;
    else if (argv[i] === '--bucket' && v) a.bucket = v, i++;
    else if (argv[i] === '--cli' && v) a.clis.push(path.resolve(v)), i++;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (a.clis.length === 0) a.clis.push(path.resolve(import.meta.dirname, '..', 'dist', 'cli', 'main.js'));
  return a;
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
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-bench-index-'));
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
    const location = `s3:${endpoint}/${a.bucket}/r-${randomBytes(4).toString('hex')}`;
    const backend = new S3Backend({ location, credentials });
    await backend.ensureBucket();
    const t0 = performance.now();
    const repo = await Repository.init(location, { host: currentHost(), sink: {}, remote: { backend, cacheRoot: path.join(dir, 'writer-cache') } }, { packSize: 1 });
    const chunks: Buffer[] = [];
    let size = 0;
    for (let i = 0; i < a.packs - 1; i++) {
      const data = randomBytes(60); // under 64 bytes: stored as is, one object per pack
      chunks.push((await repo.objects.add('blob', data)).id);
      size += data.length;
    }
    const tree = (await repo.objects.add('tree', encodeTree([{
      name: Buffer.from('many-chunks'), type: 'file', mode: 0o644, uid: 0, gid: 0, user: '', group: '', mtime: { sec: 1_700_000_000, nsec: 0 }, size, chunks,
    }]))).id;
    await repo.saveSnapshot({
      time: new Date().toISOString(), hostname: 'bench', username: 'bench', paths: ['/bench'], tags: [], tree, program: 'bench', excludes: [],
      summary: { filesNew: 1, filesChanged: 0, filesUnchanged: 0, dirsNew: 0, dirsChanged: 0, dirsUnchanged: 0, bytesRead: size, totalBytes: size, totalFiles: 1, dataAdded: size, objectsAdded: a.packs, warnings: 0, durationMs: 0 },
    });
    await repo.close();
    let packs = 0;
    const counter = new S3Backend({ location, credentials });
    for await (const b of counter.list('data/')) if (b) packs++;
    let indexFiles = 0;
    for await (const b of counter.list('packindex/')) if (b) indexFiles++;
    await counter.close();
    console.log(`repository ${location}: ${packs} packs, ${indexFiles} index file(s), written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    console.log(`\n| build | first \`snap list\`, new cache (median of ${a.rounds}) | range |\n| --- | --- | --- |`);
    for (const cli of a.clis) {
      const times: number[] = [];
      for (let r = 0; r < a.rounds; r++) {
        const home = fs.mkdtempSync(path.join(dir, 'client-'));
        const env = { ...process.env, AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey, AWS_REGION: 'us-east-1', XDG_CACHE_HOME: path.join(home, 'cache'), HOME: home, SNAP_REPO: '' };
        const t = performance.now();
        const run = spawnSync(process.execPath, [cli, '--repo', location, 'list'], { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
        const s = (performance.now() - t) / 1000;
        if (run.status !== 0) throw new Error(`${cli} list exited ${run.status}: ${run.stderr}`);
        if (r === 0) console.error(`${cli}: ${run.stderr.trim().split('\n').join(' / ')}`);
        times.push(s);
      }
      console.log(`| ${cli} | ${median(times).toFixed(2)} s | ${Math.min(...times).toFixed(2)}-${Math.max(...times).toFixed(2)} s |`);
    }
  } finally {
    await gateway?.stop(true).catch(() => {});
    await cluster?.stop().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
