// The RSS of a `snap watch` that rescans a small unchanged tree again and again, as
// test/watch.test.ts's memory test does (200 files of a few bytes, --max-interval 50ms, V8's
// heap capped at 40 MB), read at more rescans than the test waits for (docs/automation.md, "Memory").
//   node bench/watch-rescan-memory.mjs [CLI] [SCANS]
// CLI defaults to this checkout's dist/cli/main.js, SCANS (the last reading) to 600; run it with
// the node of the line to measure. At 30, 100, 200, ... rescans it prints the least of 20 readings
// of VmRSS over 2 s (a backup caught mid-way does not count) with RssAnon and RssFile at that moment.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const cli = process.argv[2] ?? path.join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const total = Number(process.argv[3] ?? 600);
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'watch-rescan-'));
const repo = path.join(base, 'repo');
const src = path.join(base, 'src');
fs.mkdirSync(src);
for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(src, `f${i}`), String(i));
spawnSync(process.execPath, [cli, '--repo', repo, 'init'], { stdio: 'ignore' });
const env = { ...process.env, NODE_OPTIONS: '--max-old-space-size=40' };
const child = spawn(process.execPath, [cli, '--repo', repo, '--json', 'watch', src, '--max-interval', '50ms'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
let scans = 0;
let buf = '';
child.stdout.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\n')) >= 0) {
    if (JSON.parse(buf.slice(0, i)).event === 'unchanged') scans++;
    buf = buf.slice(i + 1);
  }
});
const field = (f) => Number(new RegExp(`${f}:\\s+(\\d+)`).exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const readings = [];
for (const at of [30, 100, 200, 300, 400, 500, 600, 800, 1000, 1500, 2000].filter((m) => m <= total)) {
  while (scans < at) {
    if (child.exitCode !== null) throw new Error(`the watch ended (exit ${child.exitCode}) after ${scans} rescans`);
    await sleep(50);
  }
  let least = Infinity;
  for (let i = 0; i < 20; i++) {
    least = Math.min(least, field('VmRSS'));
    await sleep(100);
  }
  readings.push({ rescans: at, rss_mib: +least.toFixed(1), anon_mib: +field('RssAnon').toFixed(1), file_mib: +field('RssFile').toFixed(1) });
}
console.log(JSON.stringify({ node: process.version, zstd: process.env.SNAP_ZSTD || 'default', malloc_arena_max: process.env.MALLOC_ARENA_MAX ?? null, readings }));
child.kill('SIGTERM');
await new Promise((r) => child.on('exit', r));
fs.rmSync(base, { recursive: true, force: true });
