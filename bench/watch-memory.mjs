// The memory of a running `snap watch` over a big tree (docs/performance.md, "Watch after one
// edit"): RSS after its start backup, after a few backups for one edit each, and after a full scan.
//   node bench/watch-memory.mjs TOP SUB FILES [DIR]
// makes TOP folders of SUB folders of FILES files of 12-14 bytes (TOP*SUB*FILES files,
// 1+TOP+TOP*SUB folders) under DIR (default a new temporary folder), an unencrypted repository
// beside it, runs `snap --json watch --debounce 1s` and prints one JSON line per reading. RSS is
// the least of 20 readings of /proc/PID/status over 2 s (a backup caught mid-way does not count);
// heap_mb is V8's heap in use after the last full collection (the watch runs with --trace-gc).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const [top, sub, files] = process.argv.slice(2, 5).map(Number);
if (!(top > 0 && sub > 0 && files > 0)) {
  console.error('usage: node bench/watch-memory.mjs TOP SUB FILES [DIR]');
  process.exit(2);
}
const base = process.argv[5] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'watch-memory-'));
const cli = path.join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const src = path.join(base, 'src');
const repo = path.join(base, 'repo');
const t0 = Date.now();
for (let i = 0; i < top; i++) {
  for (let j = 0; j < sub; j++) {
    const d = path.join(src, `d${i}`, `s${j}`);
    fs.mkdirSync(d, { recursive: true });
    for (let k = 0; k < files; k++) fs.writeFileSync(path.join(d, `f${k}`), `file ${i}/${j}/${k}\n`);
  }
}
const say = (o) => console.log(JSON.stringify({ files: top * sub * files, folders: 1 + top + top * sub, ...o }));
say({ made_s: (Date.now() - t0) / 1000 });
if (spawnSync(process.execPath, [cli, '--repo', repo, 'init']).status !== 0) throw new Error('init failed');
// The test hook's `overflow` makes the last backup a full scan, as each --max-interval is.
const control = path.join(base, 'control');
const w = spawn(process.execPath, ['--trace-gc', cli, '--repo', repo, '--json', 'watch', src, '--debounce', '1s', '--max-interval', '10h'], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, SNAP_WATCH_TEST_CONTROL: control } });
let heap;
const events = [];
let buf = '';
w.stdout.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, i);
    // --trace-gc: "... Mark-Compact 150.2 (160.1) -> 120.3 (155.0) MB, ..."
    const gc = /Mark-Compact[^>]*-> ([\d.]+) \(/.exec(line);
    if (gc) heap = Number(gc[1]);
    else if (line.startsWith('{')) events.push(JSON.parse(line));
    buf = buf.slice(i + 1);
  }
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const status = () => fs.readFileSync(`/proc/${w.pid}/status`, 'utf8');
const kb = (s, k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)[1]);
const settled = async () => {
  let least = Infinity;
  for (let i = 0; i < 20; i++) {
    least = Math.min(least, kb(status(), 'VmRSS'));
    await sleep(100);
  }
  return { rss_mb: Math.round(least / 1024), heap_mb: heap };
};
const backups = () => events.filter((e) => e.event === 'snapshot' || e.event === 'unchanged');
const waitBackups = async (n) => {
  while (backups().length < n) {
    if (w.exitCode !== null) throw new Error('watch ended');
    await sleep(200);
  }
  return backups()[n - 1];
};
const s1 = await waitBackups(1);
say({ after: 'start backup', scan: s1.scan, duration_ms: s1.duration_ms, ...(await settled()), hwm_mb: Math.round(kb(status(), 'VmHWM') / 1024) });
for (let e = 1; e <= 4; e++) {
  const i = (e * 37) % top;
  fs.writeFileSync(path.join(src, `d${i}`, `s${e % sub}`, `f${(e * 7) % files}`), `edit ${e}\n`);
  const s = await waitBackups(1 + e);
  say({ after: `edit ${e}`, scan: s.scan, lstat_calls: s.lstat_calls, duration_ms: s.duration_ms, ...(await settled()), hwm_mb: Math.round(kb(status(), 'VmHWM') / 1024) });
}
fs.writeFileSync(control, 'overflow');
w.kill('SIGUSR2');
const s6 = await waitBackups(6);
say({ after: 'a full scan', scan: s6.scan, lstat_calls: s6.lstat_calls, duration_ms: s6.duration_ms, ...(await settled()), hwm_mb: Math.round(kb(status(), 'VmHWM') / 1024) });
w.kill('SIGTERM');
await new Promise((r) => w.on('exit', r));
if (process.argv[5] === undefined) fs.rmSync(base, { recursive: true, force: true });
