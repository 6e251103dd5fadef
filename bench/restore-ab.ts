// `node --import tsx bench/restore-ab.ts --cli A.js --cli B.js [--files N] [--rounds R]`: restore
// speed of two builds of snap, compared on one repository (A/B, interleaved rounds, so a busy
// machine slows both alike). Made for issue 20 (restore through directory handles): a restore of
// many small files in many folders is where per-entry system calls show. Prints the median wall
// time of each build; nothing is written to docs/ (record the numbers in docs/performance.md).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { smallFileTree } from './scale-data.js';

const { values: v } = parseArgs({
  options: {
    cli: { type: 'string', multiple: true },
    files: { type: 'string', default: '30000' },
    rounds: { type: 'string', default: '5' },
    work: { type: 'string', default: path.join(os.tmpdir(), 'snap-bench-restore-ab') },
  },
});
const clis = v.cli ?? [];
if (clis.length === 0) throw new Error('give at least one --cli path/to/dist/cli/main.js');
const work = v.work!;
const input = smallFileTree(path.join(work, 'input'), Number(v.files));
const repo = path.join(work, 'repo');
fs.rmSync(repo, { recursive: true, force: true });

/** Wall and CPU (user + sys) seconds of one run: CPU time is what a busy shared machine disturbs least. */
function snap(cli: string, args: string[]): { wall: number; cpu: number } {
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %U %S', process.execPath, cli, '--repo', repo, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const m = /TIME ([\d.]+) ([\d.]+) ([\d.]+)/.exec(r.stderr.toString());
  if (r.status !== 0 || !m) throw new Error(`${cli} ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  return { wall: Number(m[1]), cpu: Number(m[2]) + Number(m[3]) };
}

snap(clis[0]!, ['init']);
snap(clis[0]!, ['create', input.dir]);
const times = new Map<string, { wall: number; cpu: number }[]>(clis.map((c) => [c, []]));
for (let round = 0; round < Number(v.rounds); round++) {
  for (const cli of clis) {
    const target = path.join(work, 'target');
    fs.rmSync(target, { recursive: true, force: true });
    const t = snap(cli, ['restore', 'latest', target]);
    times.get(cli)!.push(t);
    console.log(`round ${round + 1}: wall ${t.wall.toFixed(2)} s, cpu ${t.cpu.toFixed(2)} s, load ${os.loadavg()[0]!.toFixed(1)}  ${cli}`);
  }
}
fs.rmSync(path.join(work, 'target'), { recursive: true, force: true });
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`${input.files} files, ${os.cpus().length} cores`);
for (const [cli, ts] of times) {
  console.log(`wall ${median(ts.map((t) => t.wall)).toFixed(2)} s, cpu ${median(ts.map((t) => t.cpu)).toFixed(2)} s (medians of ${ts.length})  ${cli}`);
}
