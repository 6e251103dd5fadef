// The zstd implementations of store/zstd.ts compared: per call on one thread, and in snap itself
// (create compresses on the compression workers, restore decompresses on the writer threads,
// check --read-data on the main thread), each command under GNU time: wall, CPU, peak RSS.
//   node --import tsx bench/zstd.ts [WORKDIR]      (run it with Node 22.15+ to include node:zlib)
// Corpus: /usr/include (small text files) + up to 64 MiB of shared libraries + 16 MiB of random
// bytes, copied once into WORKDIR/corpus.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { availableZstd, openZstdImpl, type Zstd, type ZstdKind } from '../src/store/zstd.js';
import { timed, type Usage } from './measure.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const work = path.resolve(process.argv[2] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'snap-bench-zstd-')));
const ROUNDS = Number(process.env.ZSTD_ROUNDS ?? 3);

function corpus(): string {
  const dir = path.join(work, 'corpus');
  if (fs.existsSync(path.join(dir, '.done'))) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.cpSync('/usr/include', path.join(dir, 'include'), { recursive: true, dereference: false, verbatimSymlinks: true });
  const libs = path.join(dir, 'lib');
  fs.mkdirSync(libs);
  let total = 0;
  for (const f of fs.readdirSync('/usr/lib/x86_64-linux-gnu').sort()) {
    const p = path.join('/usr/lib/x86_64-linux-gnu', f);
    const st = fs.lstatSync(p);
    if (!st.isFile() || !f.includes('.so') || total + st.size > 64 << 20) continue;
    fs.copyFileSync(p, path.join(libs, f));
    total += st.size;
  }
  fs.writeFileSync(path.join(dir, 'random.bin'), randomBytes(16 << 20));
  fs.writeFileSync(path.join(dir, '.done'), '');
  return dir;
}

function files(dir: string): Buffer[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name !== '.done')
    .map((e) => fs.readFileSync(path.join(e.parentPath, e.name)));
}

/** Single thread, per call: MB of raw data per CPU second, compress and decompress, level 3. */
function perCall(z: Zstd, pieces: Buffer[]): { comp: number; decomp: number; ratio: number } {
  const bytes = pieces.reduce((a, p) => a + p.length, 0);
  let best = { comp: 0, decomp: 0, ratio: 0 };
  for (let r = 0; r < ROUNDS; r++) {
    let t = process.cpuUsage();
    const frames = pieces.map((p) => Buffer.from(z.compress(p, 3)));
    const c = process.cpuUsage(t);
    t = process.cpuUsage();
    for (let i = 0; i < frames.length; i++) z.decompress(frames[i]!, pieces[i]!.length);
    const d = process.cpuUsage(t);
    const mbps = (u: NodeJS.CpuUsage) => bytes / 1e6 / ((u.user + u.system) / 1e6);
    best = {
      comp: Math.max(best.comp, mbps(c)),
      decomp: Math.max(best.decomp, mbps(d)),
      ratio: frames.reduce((a, f) => a + f.length, 0) / bytes,
    };
  }
  return best;
}

function cut(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 0; o + size <= data.length; o += size) out.push(data.subarray(o, o + size));
  return out;
}

const fmt = (u: Usage) => `${u.wallS.toFixed(2)} | ${(u.userS + u.sysS).toFixed(2)} | ${Math.round(u.maxRssKb / 1024)}`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  fs.mkdirSync(work, { recursive: true });
  const log = path.join(work, 'bench.log');
  const kinds = availableZstd().map((s) => s.kind);
  const impls = new Map<ZstdKind, Zstd>();
  for (const s of availableZstd()) impls.set(s.kind, await openZstdImpl(s));
  const src = corpus();
  const all = files(src);
  const text = Buffer.concat(all.filter((b) => b.length < 1 << 20 && b.subarray(0, 4).toString('latin1') !== '\x7fELF'));
  console.log(`# zstd implementations, Node ${process.version} (zstd in node:zlib: ${process.versions.zstd ?? 'none'}), ${os.cpus().length} CPUs, load ${os.loadavg()[0]!.toFixed(1)}`);
  console.log(`corpus: ${all.length} files, ${(all.reduce((a, b) => a + b.length, 0) / 1e6).toFixed(0)} MB; text for per-call: ${(text.length / 1e6).toFixed(0)} MB\n`);

  console.log('## Per call, one thread (MB per CPU second, best of rounds; level 3, text)\n');
  console.log('| implementation | 4 KiB comp | 4 KiB decomp | 1 MiB comp | 1 MiB decomp | ratio 4 KiB | ratio 1 MiB |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [kind, z] of impls) {
    const small = perCall(z, cut(text, 4096).slice(0, 8000));
    const big = perCall(z, cut(text, 1 << 20));
    console.log(`| ${kind} | ${small.comp.toFixed(0)} | ${small.decomp.toFixed(0)} | ${big.comp.toFixed(0)} | ${big.decomp.toFixed(0)} | ${small.ratio.toFixed(3)} | ${big.ratio.toFixed(3)} |`);
  }

  console.log(`\n## snap create / restore / check --read-data (median of ${ROUNDS} rounds: wall s | CPU s | peak RSS MB)\n`);
  const results = new Map<string, Usage[]>();
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? kinds : [...kinds].reverse();
    for (const kind of order) {
      const repo = path.join(work, `repo-${kind.replace(':', '-')}`);
      const out = path.join(work, `out-${kind.replace(':', '-')}`);
      fs.rmSync(repo, { recursive: true, force: true });
      fs.rmSync(out, { recursive: true, force: true });
      const env = { ...process.env, SNAP_ZSTD: kind };
      const run = (step: string, args: string[]) => {
        const t = timed(process.execPath, [CLI, '--repo', repo, ...args], { log, env });
        if (t.exitCode !== 0) throw new Error(`${kind} ${step} failed: see ${log}`);
        const key = `${kind}\t${step}`;
        results.set(key, [...(results.get(key) ?? []), t.usage]);
      };
      run('init', ['init']);
      run('create', ['create', src]);
      run('restore', ['restore', 'latest', out]);
      run('check', ['check', '--read-data']);
    }
  }
  console.log('| implementation | create wall | CPU | RSS | restore wall | CPU | RSS | check wall | CPU | RSS | repository MB |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const kind of kinds) {
    const m = (step: string) => {
      const us = results.get(`${kind}\t${step}`)!;
      return fmt({ wallS: median(us.map((u) => u.wallS)), userS: median(us.map((u) => u.userS + u.sysS)), sysS: 0, maxRssKb: median(us.map((u) => u.maxRssKb)) });
    };
    const repo = path.join(work, `repo-${kind.replace(':', '-')}`);
    const size = fs.readdirSync(repo, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).reduce((a, e) => a + fs.statSync(path.join(e.parentPath, e.name)).size, 0);
    console.log(`| ${kind} | ${m('create')} | ${m('restore')} | ${m('check')} | ${(size / 1e6).toFixed(1)} |`);
  }
  console.log(`\nwork folder: ${work} (log: ${log})`);
}

await main();
