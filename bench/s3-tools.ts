// `npm run bench:s3-tools`: snap and restic back up the bench-kit corpus to a local Ceph radosgw and
// restore it from there (issue 13's target: snap at most 0.8 of restic's time for the first backup
// and for the restore). snap's repository is encrypted, as `snap init` makes a remote one by
// default; restic always encrypts. Tools alternate within each round (odd rounds snap first), each
// round on a fresh prefix of the bucket, restores into an empty folder (a fresh ext4 each where the
// bench may mount: bench/restore-fs.ts) and compared with the corpus
// (SHA-256 of every regular file) in round 1. Prints a Markdown table: wall and CPU seconds, the
// median over rounds, and snap / restic paired within each round.
//
//   npm run bench:s3-tools -- [--rounds N] [--work DIR] [--big-mib N]
//
// radosgw is started here in a temporary folder (test/helpers/radosgw.ts) and stopped at the end.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { CephCluster, type Gateway, ensureCephInstalled } from '../test/helpers/radosgw.js';
import { ensureCorpus, freshCopy, treeSum } from './corpus.js';
import { capture, hasExecutable, timed, type Usage } from './measure.js';
import { pinnedLauncher, pinSnapCli } from './pin.js';
import { freshRestoreTarget, restoreFsKind } from './restore-fs.js';

const { values: v } = parseArgs({
  options: { rounds: { type: 'string' }, work: { type: 'string' }, 'big-mib': { type: 'string' } },
});
const rounds = Number(v.rounds ?? '2');
const work = v.work ?? process.env.SNAP_BENCH_DIR ?? '/tmp/snap-bench';
const bigMib = Number(v['big-mib'] ?? '192');

interface Step {
  tool: string;
  round: number;
  step: 'backup' | 'restore';
  usage: Usage;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  if (!hasExecutable('restic')) throw new Error('restic is not installed (apt-get install restic)');
  const why = ensureCephInstalled();
  if (why) throw new Error(why);
  fs.mkdirSync(work, { recursive: true });
  const log = path.join(work, 's3-tools.log');
  const corpus = ensureCorpus(path.join(work, 'corpus'), bigMib, log);
  const data = path.join(work, 'data');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-bench-s3-tools-'));
  process.env.SNAP_SERVERS_DIR = dir;
  let cluster: CephCluster | undefined;
  let gateway: Gateway | undefined;
  const steps: Step[] = [];
  const loads: number[] = [];
  try {
    cluster = await CephCluster.start(path.join(dir, 'ceph'), 8 * 1024 ** 3);
    gateway = await cluster.startGateway('bench');
    const keys = cluster.createUser('bench');
    const aws = { AWS_ACCESS_KEY_ID: keys.accessKeyId, AWS_SECRET_ACCESS_KEY: keys.secretAccessKey, AWS_REGION: 'us-east-1', AWS_DEFAULT_REGION: 'us-east-1' };
    // snap runs as installed: the pinned bin/snap (its Node flags), this Node first on PATH.
    const snapBin = pinnedLauncher(pinSnapCli('bench-s3'));
    const nodeDir = path.dirname(process.execPath);
    let want: { sum: string } | undefined;
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 === 1 ? ['snap', 'restic'] : ['restic', 'snap'];
      for (const tool of order) {
        freshCopy(corpus.dir, data);
        want ??= treeSum(data); // the copy: the corpus without its manifest
        const prefix = `${tool}-${round}-${randomBytes(3).toString('hex')}`;
        const restore = path.join(work, 'restore-s3');
        const cache = path.join(work, `cache-s3-${tool}`);
        fs.rmSync(cache, { recursive: true, force: true });
        let env: NodeJS.ProcessEnv;
        let init: string[];
        let backup: string[];
        let restoreCmd: string[];
        let cmd: string;
        if (tool === 'snap') {
          const repo = `s3:${gateway.endpoint}/bench/${prefix}`;
          env = { ...process.env, ...aws, SNAP_PASSWORD: 'bench', SNAP_CACHE_DIR: cache, PATH: `${nodeDir}:${process.env.PATH ?? ''}` };
          cmd = snapBin;
          init = ['--repo', repo, 'init'];
          backup = ['--repo', repo, '--quiet', 'create', data];
          restoreCmd = ['--repo', repo, '--quiet', 'restore', 'latest', restore];
        } else {
          const repo = `s3:${gateway.endpoint}/bench/${prefix}`;
          env = { ...process.env, ...aws, RESTIC_PASSWORD: 'bench', RESTIC_REPOSITORY: repo, RESTIC_CACHE_DIR: cache };
          cmd = 'restic';
          init = ['init', '--repository-version', '2', '-q'];
          backup = ['backup', '-q', data];
          restoreCmd = ['restore', 'latest', '-q', '--target', restore];
        }
        capture(cmd, init, { env });
        let undoTarget: (() => void) | undefined;
        try {
          for (const [step, args] of [['backup', backup], ['restore', restoreCmd]] as const) {
            if (step === 'restore') undoTarget = freshRestoreTarget(restore, path.join(work, 'restore-s3.img'));
            const t = timed(cmd, args, { log, env });
            if (t.exitCode !== 0) throw new Error(`${tool} ${step} exited ${t.exitCode} (see ${log})`);
            steps.push({ tool, round, step, usage: t.usage });
            loads.push(os.loadavg()[0]!);
            process.stderr.write(`bench-s3: ${tool} round ${round}: ${step}: ${t.usage.wallS.toFixed(2)} s wall, ${(t.usage.userS + t.usage.sysS).toFixed(1)} s CPU, ${Math.round(t.usage.maxRssKb / 1024)} MiB RSS\n`);
          }
          if (round === 1) {
            const got = treeSum(path.join(restore, data));
            process.stderr.write(`bench-s3: ${tool}: restore ${got.sum === want!.sum ? 'matches' : 'DIFFERS FROM'} the corpus\n`);
            if (got.sum !== want!.sum) throw new Error(`${tool}'s restore differs from the corpus`);
          }
        } finally {
          undoTarget?.();
        }
      }
    }
  } finally {
    await gateway?.stop(true);
    await cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const of = (tool: string, step: Step['step']): Step[] => steps.filter((s) => s.tool === tool && s.step === step);
  const wall = (s: Step): number => s.usage.wallS;
  const cpu = (s: Step): number => s.usage.userS + s.usage.sysS;
  const lines = [
    `${rounds} round(s), corpus ${corpus.files} files, ${corpus.bytes} bytes, radosgw on 127.0.0.1; restores into ${restoreFsKind() === 'fresh ext4' ? 'a fresh ext4 each (loop image)' : 'a folder of the work disk'}; load average ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)} (median ${median(loads).toFixed(1)}) on ${os.cpus().length} cores; ${capture('restic', ['version']).trim()}`,
    '',
    '| step | snap wall s | restic wall s | snap / restic (wall, paired) | snap CPU s | restic CPU s | snap peak RSS | restic peak RSS |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const step of ['backup', 'restore'] as const) {
    const s = of('snap', step);
    const r = of('restic', step);
    const ratios = s.map((x) => x.usage.wallS / r.find((y) => y.round === x.round)!.usage.wallS);
    lines.push(
      `| ${step === 'backup' ? 'first backup' : 'restore latest'} | ${median(s.map(wall)).toFixed(2)} | ${median(r.map(wall)).toFixed(2)} | ${median(ratios).toFixed(2)} [${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}] | ${median(s.map(cpu)).toFixed(1)} | ${median(r.map(cpu)).toFixed(1)} | ${Math.round(median(s.map((x) => x.usage.maxRssKb)) / 1024)} MiB | ${Math.round(median(r.map((x) => x.usage.maxRssKb)) / 1024)} MiB |`,
    );
  }
  console.log(lines.join('\n'));
}

await main();
