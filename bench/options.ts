// Command-line flags of `npm run bench` (each also settable through the environment).
import { parseArgs } from 'node:util';

export interface BenchOptions {
  work: string;
  rounds: number;
  tools: string[];
  bigMib: number;
  corpusDigest?: string;
  reportOnly: boolean;
  docs: boolean;
}

export const USAGE = `usage: npm run bench -- [options]
  --work DIR            work folder: corpus, copies, repositories, logs ($SNAP_BENCH_DIR, default /tmp/snap-bench)
  --rounds N            rounds, each running every tool once ($SNAP_BENCH_ROUNDS, default 2)
  --tools LIST          comma-separated, in round-1 order ($SNAP_BENCH_TOOLS, default snap-enc,snap,restic,borg)
  --skip TOOL           leave a tool out (repeatable)
  --big-mib N           size of each of the corpus's three big files ($SNAP_BENCH_BIG_MIB, default 192)
  --corpus-digest HEX   refuse a corpus whose manifest digest differs
  --report-only         rewrite docs/performance.md and the chart from bench/results/latest.*
  --no-docs             measure, but leave docs/ and bench/results/ alone (results stay in the work folder)
Needs GNU time (/usr/bin/time); restic and borg are measured when installed.`;

export function parseOptions(argv: string[]): BenchOptions {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      work: { type: 'string' },
      rounds: { type: 'string' },
      tools: { type: 'string' },
      skip: { type: 'string', multiple: true },
      'big-mib': { type: 'string' },
      'corpus-digest': { type: 'string' },
      'report-only': { type: 'boolean' },
      'no-docs': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const env = process.env;
  const skip = new Set(v.skip ?? []);
  return {
    work: v.work ?? env.SNAP_BENCH_DIR ?? '/tmp/snap-bench',
    rounds: positive('--rounds', v.rounds ?? env.SNAP_BENCH_ROUNDS ?? '2'),
    tools: (v.tools ?? env.SNAP_BENCH_TOOLS ?? 'snap-enc,snap,restic,borg').split(',').map((t) => t.trim()).filter((t) => t && !skip.has(t)),
    bigMib: positive('--big-mib', v['big-mib'] ?? env.SNAP_BENCH_BIG_MIB ?? '192'),
    corpusDigest: v['corpus-digest'],
    reportOnly: v['report-only'] === true,
    docs: v['no-docs'] !== true,
  };
}

function positive(flag: string, s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer (not '${s}')`);
  return n;
}
