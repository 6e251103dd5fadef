// Object-compression codec benchmark: deflate (fflate, node:zlib) against zstd bindings.
//
//   node --import tsx bench/codecs.ts [CORPUS_DIR]
//
// Corpus: four kinds of data, CODEC_MB MiB each (default 32): text (.h/.py/.txt from /usr/include and
// /usr/lib/python3*), ELF (/usr/lib/x86_64-linux-gnu/*.so*), random bytes, already-compressed (.gz from
// /usr/share/doc). Files are taken in a fixed pseudo-random order (sha256 of the path) so every part of the
// tree is represented. With CORPUS_DIR the four files are read from there if present, else built and saved
// there, so later runs use identical bytes. Each kind is cut into 1 MiB pieces (big-file chunks) and 4 KiB
// pieces (small files, median 1.6 KB, mean ~10 KB in snap's corpus).
//
// zstd bindings are optional: each one that can be loaded is measured. They are looked up from this project
// and from every directory in CODEC_MODULES (colon-separated, each holding a node_modules/), so candidates
// can be installed in scratch directories instead of the project.
//
// Other knobs (environment): CODEC_REPS (3; the best run is reported, as the machine may be shared),
// CODEC_MIN_S (0.4; minimum seconds per measurement, which also covers at least one full pass over the data),
// CODEC_ONLY (regex on codec names), CODEC_SECTIONS (default 123: which sections to run), CODEC_TREE (a directory:
// also print what each codec would store for that whole tree, e.g. the benchmark corpus).
//
// Sections printed (markdown): 1. codec table, 2. auto-skip sample heuristic, 3. does async compression run off
// the main thread and beside a busy one, 4. (with CODEC_TREE) stored size of a whole tree per codec.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import * as zlib from 'node:zlib';
import * as fflate from 'fflate';

const MiB = 1 << 20;
const CORPUS_BYTES = Number(process.env.CODEC_MB ?? 32) * MiB;
const REPS = Number(process.env.CODEC_REPS ?? 3);
const MIN_S = Number(process.env.CODEC_MIN_S ?? 0.4);
const ONLY = process.env.CODEC_ONLY ? new RegExp(process.env.CODEC_ONLY) : undefined;
const corpusDir = process.argv[2];
const SECTIONS = process.env.CODEC_SECTIONS ?? '123';

// ---------------------------------------------------------------------------------------------------
// Module loading

const requirers = [
  createRequire(import.meta.url),
  ...(process.env.CODEC_MODULES ?? '')
    .split(':')
    .filter(Boolean)
    .map((d) => createRequire(join(d, 'package.json'))),
];

interface Loaded {
  mod: any;
  version: string;
  resolved: string;
}

function load(name: string): Loaded | undefined {
  for (const req of requirers) {
    let resolved: string;
    try {
      resolved = req.resolve(name);
    } catch {
      continue;
    }
    const mod = req(name);
    return { mod, version: packageVersion(resolved, name), resolved };
  }
  return undefined;
}

function packageVersion(file: string, name: string): string {
  for (let d = dirname(file); d !== dirname(d); d = dirname(d)) {
    const p = join(d, 'package.json');
    if (!existsSync(p)) continue;
    const j = JSON.parse(readFileSync(p, 'utf8'));
    if (j.name === name) return j.version;
  }
  return '?';
}

// ---------------------------------------------------------------------------------------------------
// Codecs

type Bytes = Uint8Array;

interface Codec {
  name: string;
  pkg: string;
  compressSync?: (b: Bytes) => Bytes;
  compressAsync?: (b: Bytes) => Promise<Bytes>;
  decompressSync?: (b: Bytes, rawLength: number) => Bytes;
  decompressAsync?: (b: Bytes, rawLength: number) => Promise<Bytes>;
  close?: () => Promise<void>;
}

const deflateRawAsync = promisify(zlib.deflateRaw);
const inflateRawAsync = promisify(zlib.inflateRaw);

async function buildCodecs(): Promise<Codec[]> {
  const codecs: Codec[] = [];
  const fflateVer = load('fflate')?.version ?? '?';
  codecs.push({
    name: 'fflate deflate L1',
    pkg: `fflate@${fflateVer}`,
    compressSync: (b) => fflate.deflateSync(b, { level: 1 }),
    decompressSync: (b, n) => fflate.inflateSync(b, { out: new Uint8Array(n) }),
  });
  codecs.push({
    name: 'node:zlib deflateRaw L1',
    pkg: `node:zlib (zlib ${process.versions.zlib})`,
    compressSync: (b) => zlib.deflateRawSync(b, { level: 1 }),
    compressAsync: (b) => deflateRawAsync(b, { level: 1 }),
    decompressSync: (b, n) => zlib.inflateRawSync(b, { maxOutputLength: Math.max(n, 1) }),
    decompressAsync: (b, n) => inflateRawAsync(b, { maxOutputLength: Math.max(n, 1) }),
  });

  // zstd-napi: sync only (reused context), zstd built from source by node-gyp at install.
  const napi = load('zstd-napi');
  if (napi) {
    const binding = createRequire(napi.resolved)('../binding');
    const pkg = `zstd-napi@${napi.version} (zstd ${binding.versionString()})`;
    for (const level of [1, 3]) {
      const c = new napi.mod.Compressor();
      c.setParameters({ compressionLevel: level });
      const d = new napi.mod.Decompressor();
      codecs.push({
        name: `zstd-napi L${level}${level === binding.defaultCLevel() ? ' (default)' : ''}`,
        pkg,
        compressSync: (b) => c.compress(b),
        decompressSync: (b) => d.decompress(b),
      });
    }
    // The binding has no async API; the way to get it off the main thread is a worker pool.
    codecs.push(napiWorkerCodec(napi.resolved, 1, pkg));
  }

  // @toondepauw/node-zstd: Encoder/Decoder classes, encode() (napi AsyncTask = libuv pool) and encodeSync().
  const toon = load('@toondepauw/node-zstd');
  if (toon) {
    const pkg = `@toondepauw/node-zstd@${toon.version}`;
    const dec = new toon.mod.Decoder();
    for (const level of [1, 3]) {
      const enc = new toon.mod.Encoder(level);
      codecs.push({
        name: `toondepauw L${level}${level === 3 ? ' (zstd default)' : ''}`,
        pkg,
        compressSync: (b) => enc.encodeSync(asBuffer(b)),
        compressAsync: (b) => enc.encode(asBuffer(b)),
        decompressSync: (b) => dec.decodeSync(asBuffer(b)),
        decompressAsync: (b) => dec.decode(asBuffer(b)),
      });
    }
  }

  // @mongodb-js/zstd 1.x: async only (own tokio threads). Its exported compress(data, level) drops the
  // level argument, so it always compresses at zstd's default level 3.
  const mongo = load('@mongodb-js/zstd');
  if (mongo) {
    codecs.push({
      name: 'mongodb-js default (L3)',
      pkg: `@mongodb-js/zstd@${mongo.version}`,
      compressAsync: (b) => mongo.mod.compress(asBuffer(b)),
      decompressAsync: (b) => mongo.mod.decompress(asBuffer(b)),
    });
  }

  // WebAssembly builds, for reference (sync, main thread).
  const zc = load('zstd-codec');
  if (zc) {
    const simple: any = await new Promise((resolve) => zc.mod.ZstdCodec.run((z: any) => resolve(new z.Simple())));
    {
      codecs.push({
        name: 'zstd-codec (wasm) L1',
        pkg: `zstd-codec@${zc.version}`,
        compressSync: (b) => simple.compress(b, 1),
        decompressSync: (b) => simple.decompress(b),
      });
    }
  }
  const bw = load('@bokuweb/zstd-wasm');
  if (bw) {
    await bw.mod.init();
    codecs.push({
      name: 'bokuweb zstd-wasm L1',
      pkg: `@bokuweb/zstd-wasm@${bw.version}`,
      compressSync: (b) => bw.mod.compress(b, 1),
      decompressSync: (b) => bw.mod.decompress(b),
    });
  }
  return codecs.filter((c) => !ONLY || ONLY.test(c.name));
}

function asBuffer(b: Bytes): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** zstd-napi's sync compress in a pool of 2 worker_threads (inputs and outputs are copied once, then transferred). */
function napiWorkerCodec(modulePath: string, level: number, pkg: string): Codec {
  const src = `
    const { parentPort, workerData } = require('node:worker_threads');
    const z = require(workerData.modulePath);
    const c = new z.Compressor(); c.setParameters({ compressionLevel: workerData.level });
    const d = new z.Decompressor();
    parentPort.on('message', (m) => {
      const out = m.op === 'c' ? c.compress(m.buf) : d.decompress(m.buf);
      const copy = Uint8Array.prototype.slice.call(out); // own ArrayBuffer, so the transfer moves only it
      parentPort.postMessage({ id: m.id, out: copy }, [copy.buffer]);
    });`;
  const workers = [0, 1].map(() => {
    const w = new Worker(src, { eval: true, workerData: { modulePath, level } });
    w.unref();
    return { w, busy: 0 };
  });
  const waiting = new Map<number, (b: Bytes) => void>();
  let nextId = 0;
  for (const x of workers) {
    x.w.on('message', (m: { id: number; out: Bytes }) => {
      x.busy--;
      waiting.get(m.id)!(m.out);
      waiting.delete(m.id);
    });
  }
  const run = (op: 'c' | 'd', buf: Bytes) =>
    new Promise<Bytes>((resolve) => {
      const x = workers[0]!.busy <= workers[1]!.busy ? workers[0]! : workers[1]!;
      x.busy++;
      const id = nextId++;
      waiting.set(id, resolve);
      // Copy first: posting a view would clone its whole backing ArrayBuffer (the entire corpus).
      const copy = new Uint8Array(buf);
      x.w.postMessage({ id, op, buf: copy }, [copy.buffer]);
    });
  return {
    name: `zstd-napi L${level} in 2 worker_threads`,
    pkg,
    compressAsync: (b) => run('c', b),
    decompressAsync: (b) => run('d', b),
    close: async () => {
      await Promise.all(workers.map((x) => x.w.terminate()));
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Corpus

type Kind = 'text' | 'ELF' | 'random' | 'gz';
const KINDS: Kind[] = ['text', 'ELF', 'random', 'gz'];

function walk(dir: string, keep: (p: string) => boolean, out: string[]): void {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== '__pycache__') walk(p, keep, out);
    } else if (e.isFile() && keep(p)) out.push(p);
  }
}

/** Concatenate whole files in a fixed pseudo-random order until `bytes` are reached. */
function concatFiles(paths: string[], bytes: number): Buffer {
  const order = [...new Set(paths)]
    .map((p) => ({ p, k: createHash('sha256').update(p).digest('hex') }))
    .sort((a, b) => (a.k < b.k ? -1 : 1));
  const parts: Buffer[] = [];
  let n = 0;
  for (const { p } of order) {
    if (n >= bytes) break;
    const b = readFileSync(p);
    parts.push(b);
    n += b.length;
  }
  if (n < bytes) throw new Error(`only ${n} bytes of input found, ${bytes} wanted`);
  return Buffer.concat(parts).subarray(0, bytes);
}

function buildKind(kind: Kind): Buffer {
  if (kind === 'random') return randomBytes(CORPUS_BYTES);
  const files: string[] = [];
  if (kind === 'text') {
    const keep = (p: string) => /\.(h|py|txt)$/.test(p);
    walk('/usr/include', keep, files);
    for (const d of readdirSync('/usr/lib')) if (/^python3/.test(d)) walk(join('/usr/lib', d), keep, files);
  } else if (kind === 'ELF') {
    const dir = '/usr/lib/x86_64-linux-gnu';
    for (const f of readdirSync(dir)) {
      if (!/\.so(\.|$)/.test(f)) continue;
      const p = realpathSync(join(dir, f)); // symlinks point at the same library: count it once
      if (lstatSync(p).isFile()) files.push(p);
    }
  } else {
    walk('/usr/share/doc', (p) => p.endsWith('.gz'), files);
  }
  return concatFiles(files, CORPUS_BYTES);
}

const built = new Set<Kind>();

function corpus(): Map<Kind, Buffer> {
  const m = new Map<Kind, Buffer>();
  if (corpusDir) mkdirSync(corpusDir, { recursive: true });
  for (const kind of KINDS) {
    const file = corpusDir ? join(corpusDir, `${kind}.bin`) : undefined;
    let b: Buffer;
    if (file && existsSync(file)) b = readFileSync(file).subarray(0, CORPUS_BYTES);
    else {
      b = buildKind(kind);
      built.add(kind);
      if (file) writeFileSync(file, b);
    }
    m.set(kind, b);
  }
  return m;
}

function pieces(b: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 0; o + size <= b.length; o += size) out.push(b.subarray(o, o + size));
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Timing

const now = () => performance.now() / 1000;

/**
 * Throughput of one run: input bytes per wall second, per CPU-second of the whole process (all its threads),
 * and how many cores the process kept busy meanwhile. On an idle machine a single-thread run has cpu ≈ wall;
 * when other processes compete for the cores, cpu still tells the cost per byte.
 */
interface Rate {
  wall: number;
  cpu: number;
  cores: number;
}

function finish(bytes: number, t0: number, c0: NodeJS.CpuUsage): Rate {
  const t = now() - t0;
  const c = process.cpuUsage(c0);
  const cpuS = (c.user + c.system) / 1e6;
  return { wall: bytes / t, cpu: bytes / cpuS, cores: cpuS / t };
}

/** Rate of fn over pieces (cyclic), for at least one full pass and MIN_S seconds. */
function rateSync(ps: Bytes[], fn: (p: Bytes, i: number) => unknown, inBytes: (i: number) => number): Rate {
  const t0 = now();
  const c0 = process.cpuUsage();
  let bytes = 0;
  let i = 0;
  for (;;) {
    const k = i % ps.length;
    fn(ps[k]!, k);
    bytes += inBytes(k);
    i++;
    if (i >= ps.length && now() - t0 >= MIN_S) break;
  }
  return finish(bytes, t0, c0);
}

async function rateAsync(
  ps: Bytes[],
  fn: (p: Bytes, i: number) => Promise<unknown>,
  inBytes: (i: number) => number,
  inFlight: number,
): Promise<Rate> {
  const t0 = now();
  const c0 = process.cpuUsage();
  let bytes = 0;
  let i = 0;
  let done = false;
  const lane = async () => {
    while (!done) {
      const k = i++ % ps.length;
      await fn(ps[k]!, k);
      bytes += inBytes(k);
      if (i >= ps.length && now() - t0 >= MIN_S) done = true;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  return finish(bytes, t0, c0);
}

/** Best of REPS runs (the fastest wall time, and separately the lowest CPU cost): interference only slows. */
async function bestOf(f: () => Rate | Promise<Rate>): Promise<Rate> {
  let best: Rate = { wall: 0, cpu: 0, cores: 0 };
  for (let r = 0; r < REPS; r++) {
    const x = await f();
    if (x.wall > best.wall) best = { ...x, cpu: Math.max(x.cpu, best.cpu) };
    else best.cpu = Math.max(best.cpu, x.cpu);
  }
  return best;
}

const mbs = (x: number | Rate | undefined) =>
  x === undefined ? '—' : ((typeof x === 'number' ? x : x.wall) / 1e6).toFixed(0);
/**
 * Single-thread rate: per CPU-second, robust when other processes compete for the cores. Marked with * when
 * the best wall-clock run still fell more than 15 % short of it (the machine was busy).
 */
const mbs1 = (x: Rate | undefined) => (x === undefined ? '—' : `${mbs(x.cpu)}${x.wall < 0.85 * x.cpu ? '*' : ''}`);
/** Wall rate with the cores the process kept busy, e.g. "380 (1.9)". */
const mbsCores = (x: Rate | undefined) => (x === undefined ? '—' : `${mbs(x)} (${x.cores.toFixed(1)})`);

// ---------------------------------------------------------------------------------------------------
// 1. Codec table

interface Row {
  codec: Codec;
  kind: Kind;
  size: string;
  ratio: number;
  sync?: Rate;
  sync1?: Rate; // async API, 1 in flight (for codecs without a sync API)
  async2?: Rate;
  dec?: Rate;
  decMode: string;
}

async function compressAll(c: Codec, ps: Bytes[]): Promise<Bytes[]> {
  const out: Bytes[] = [];
  for (const p of ps) out.push(c.compressSync ? c.compressSync(p) : await c.compressAsync!(p));
  return out;
}

async function measureCodec(c: Codec, kind: Kind, size: string, ps: Buffer[]): Promise<Row> {
  const comp = await compressAll(c, ps);
  const raw = ps.reduce((a, p) => a + p.length, 0);
  const ratio = comp.reduce((a, p) => a + p.length, 0) / raw;
  // Round-trip check on a spread of pieces.
  for (let k = 0; k < ps.length; k += Math.max(1, Math.floor(ps.length / 17))) {
    const back = c.decompressSync ? c.decompressSync(comp[k]!, ps[k]!.length) : await c.decompressAsync!(comp[k]!, ps[k]!.length);
    if (!Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(ps[k]!))
      throw new Error(`${c.name}: round trip failed on ${kind} ${size} piece ${k}`);
  }
  const len = (i: number) => ps[i]!.length;
  const row: Row = { codec: c, kind, size, ratio, decMode: c.decompressSync ? 'sync' : 'async×1' };
  if (c.compressSync) row.sync = await bestOf(() => rateSync(ps, (p) => c.compressSync!(p), len));
  else row.sync1 = await bestOf(() => rateAsync(ps, (p) => c.compressAsync!(p), len, 1));
  if (c.compressAsync) row.async2 = await bestOf(() => rateAsync(ps, (p) => c.compressAsync!(p), len, 2));
  if (c.decompressSync) row.dec = await bestOf(() => rateSync(comp, (p, i) => c.decompressSync!(p, len(i)), len));
  else row.dec = await bestOf(() => rateAsync(comp, (p, i) => c.decompressAsync!(p, len(i)), len, 1));
  return row;
}

// ---------------------------------------------------------------------------------------------------
// 2. Auto-skip: trial-compress a sample from the middle of the chunk first

const SKIP_IF_SAMPLE_RATIO_ABOVE = 0.9;
const KEEP_IF_RATIO_AT_MOST = 0.95; // snap keeps the compressed form only when it saves >= 5 %

interface SkipResult {
  mbs: number;
  stored: number; // stored bytes / input bytes
  skipped: number; // chunks skipped by the sample
  missed: number; // bytes that whole-chunk compression would have saved on skipped chunks / input bytes
}

function skipRun(compress: (b: Bytes) => Bytes, ps: Buffer[], sample: number, wholeLen: number[]): SkipResult {
  let stored = 0;
  let skipped = 0;
  let missed = 0;
  let input = 0;
  const store = (p: Buffer): number => {
    if (sample > 0) {
      const mid = Math.max(0, Math.floor(p.length / 2) - sample / 2);
      const trial = compress(p.subarray(mid, mid + sample));
      if (trial.length > sample * SKIP_IF_SAMPLE_RATIO_ABOVE) return -1;
    }
    const out = compress(p);
    return out.length <= p.length * KEEP_IF_RATIO_AT_MOST ? out.length : p.length;
  };
  const rate = rateSync(ps, (p) => store(p as Buffer), (i) => ps[i]!.length).cpu;
  ps.forEach((p, k) => {
    const s = store(p);
    input += p.length;
    if (s < 0) {
      skipped++;
      stored += p.length;
      const w = wholeLen[k]!;
      if (w <= p.length * KEEP_IF_RATIO_AT_MOST) missed += p.length - w;
    } else stored += s;
  });
  return { mbs: rate, stored: stored / input, skipped, missed: missed / input };
}

// ---------------------------------------------------------------------------------------------------
// 3. Where does async compression run? Per-thread CPU time from /proc/self/task/*/stat (Linux), so the answer
//    holds even when other processes load the machine: the main thread's CPU time against everything else.

const OVERLAP_S = 2;
const CLK_TCK = 100; // USER_HZ on Linux x86-64

/** CPU seconds (user + system) of the main thread and of all threads of this process. */
function threadCpu(): { main: number; all: number } {
  let all = 0;
  let main = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const t = (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 and 15: utime, stime
    all += t;
    if (Number(tid) === process.pid) main = t;
  }
  return { main, all };
}

async function hashLoop(buf: Buffer, stop: () => boolean): Promise<number> {
  let bytes = 0;
  while (!stop()) {
    createHash('sha256').update(buf).digest();
    bytes += buf.length;
    await new Promise((r) => setImmediate(r));
  }
  return bytes;
}

interface Overlap {
  wall: number;
  hashBytes: number;
  compBytes: number;
  mainCpu: number; // seconds
  otherCpu: number; // seconds (all threads but the main one; ended threads are not counted)
}

/**
 * Run for OVERLAP_S seconds: two async compressions in flight (or, with sync, one compression after each
 * hash on the main thread), with or without the main thread hashing 1 MiB buffers in between.
 */
async function overlap(c: Codec, ps: Buffer[], hashBuf: Buffer | undefined): Promise<Overlap> {
  const t0 = now();
  const cpu0 = threadCpu();
  const stop = () => now() - t0 >= OVERLAP_S;
  let compBytes = 0;
  let hashBytes = 0;
  let i = 0;
  if (c.compressAsync) {
    const lane = async () => {
      while (!stop()) {
        const p = ps[i++ % ps.length]!;
        await c.compressAsync!(p);
        compBytes += p.length;
      }
    };
    const lanes = Promise.all([lane(), lane()]);
    if (hashBuf) hashBytes = await hashLoop(hashBuf, stop);
    await lanes;
  } else {
    while (!stop()) {
      if (hashBuf) {
        createHash('sha256').update(hashBuf).digest();
        hashBytes += hashBuf.length;
      }
      const p = ps[i++ % ps.length]!;
      c.compressSync!(p);
      compBytes += p.length;
      await new Promise((r) => setImmediate(r));
    }
  }
  const wall = now() - t0;
  const cpu1 = threadCpu();
  const mainCpu = cpu1.main - cpu0.main;
  return { wall, hashBytes, compBytes, mainCpu, otherCpu: cpu1.all - cpu0.all - mainCpu };
}

// ---------------------------------------------------------------------------------------------------
// 4. Optional (CODEC_TREE=DIR): what each codec would store for a whole tree, e.g. the benchmark corpus.
//    Files up to 1 MiB are compressed whole, bigger ones in 1 MiB pieces (about snap's chunk size); no dedup,
//    so only the ratios between codecs mean anything. A piece is stored compressed only if that saves >= 5 %.

function treeSizes(dir: string, codecs: Codec[]): void {
  const files: string[] = [];
  walk(dir, () => true, files);
  files.sort();
  const input = { bytes: 0, objects: 0 };
  const stored = codecs.map(() => ({ bytes: 0, cpu: 0 }));
  for (const f of files) {
    const b = readFileSync(f);
    const ps = b.length <= MiB ? [b] : pieces(b, MiB).concat(b.length % MiB ? [b.subarray(b.length - (b.length % MiB))] : []);
    for (const p of ps) {
      input.bytes += p.length;
      input.objects++;
      codecs.forEach((c, k) => {
        const c0 = process.cpuUsage();
        const out = p.length < 64 ? p : c.compressSync!(p);
        const u = process.cpuUsage(c0);
        stored[k]!.cpu += (u.user + u.system) / 1e6;
        stored[k]!.bytes += out.length <= p.length * KEEP_IF_RATIO_AT_MOST ? out.length : p.length;
      });
    }
  }
  console.log(`## 4. Whole tree: ${dir}\n`);
  console.log(`${files.length} files, ${input.objects} objects (files ≤ 1 MiB whole, larger ones in 1 MiB pieces), ${input.bytes} bytes; no dedup.\n`);
  console.log('| codec | stored bytes | stored / input | vs first row | compress CPU s |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  codecs.forEach((c, k) => {
    const x = stored[k]!;
    console.log(`| ${c.name} | ${x.bytes} | ${(x.bytes / input.bytes).toFixed(3)} | ${(x.bytes / stored[0]!.bytes).toFixed(3)} | ${x.cpu.toFixed(1)} |`);
  });
  console.log('');
}

// ---------------------------------------------------------------------------------------------------

async function main() {
  const started = new Date();
  const codecs = await buildCodecs();
  const data = corpus();
  const cpu = cpus()[0]?.model ?? '?';
  console.log(`# Codec benchmark\n`);
  console.log(`${started.toISOString()} · Node ${process.version} · ${cpus().length} × ${cpu} · corpus ${CORPUS_BYTES / MiB} MiB per kind` +
    ` · best of ${REPS} runs, each ≥ ${MIN_S} s and ≥ 1 pass · MB = 10^6 bytes · load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
  for (const kind of KINDS) {
    const b = data.get(kind)!;
    console.log(`- ${kind}: sha256 ${createHash('sha256').update(b).digest('hex').slice(0, 16)}${built.has(kind) ? ' (built now)' : ` (read from ${corpusDir})`}`);
  }
  console.log('');
  const pkgs = [...new Set(codecs.map((c) => c.pkg))];
  console.log(`Packages: ${pkgs.join(', ')}\n`);

  // Warm up every codec (lazy init, wasm compile, JIT, thread start).
  const warm = pieces(data.get('text')!, MiB).slice(0, 2);
  for (const c of codecs) {
    await compressAll(c, warm);
    if (c.compressAsync) await Promise.all(warm.map((p) => c.compressAsync!(p)));
  }

  // 1. Table
  if (SECTIONS.includes('1')) {
    const sizes: [string, number][] = [
      ['1 MiB', MiB],
      ['4 KiB', 4096],
    ];
    const rows: Row[] = [];
    for (const [size, n] of sizes) {
      for (const kind of KINDS) {
        const ps = pieces(data.get(kind)!, n);
        for (const c of codecs) {
          const r = await measureCodec(c, kind, size, ps);
          rows.push(r);
          process.stderr.write(`${size} ${kind} ${c.name}: ratio ${r.ratio.toFixed(3)} sync ${mbs((r.sync ?? r.sync1)?.cpu)} async2 ${mbs(r.async2)} dec ${mbs(r.dec)}\n`);
        }
      }
    }
    console.log('## 1. Compress and decompress throughput (MB/s of uncompressed data), ratio = compressed/raw\n');
    console.log('"1 thread" is the sync API on the main thread (or, for an async-only API, one call in flight), in MB per');
    console.log('CPU-second of the process, which equals MB/s on an idle machine and stays right when the machine is shared;');
    console.log('"async ×2" keeps two async calls in flight (thread pool), so it can use both cores; in brackets the cores');
    console.log('the process kept busy (CPU time / wall time).\n');
    for (const [size] of sizes) {
      console.log(`### ${size} pieces\n`);
      console.log('| data | codec | ratio | compress, 1 thread | compress, async ×2 (cores) | decompress, 1 thread |');
      console.log('| --- | --- | ---: | ---: | ---: | ---: |');
      for (const k of KINDS) {
        for (const c of codecs) {
          const r = rows.find((x) => x.codec === c && x.kind === k && x.size === size)!;
          const one = r.sync !== undefined ? mbs1(r.sync) : `${mbs1(r.sync1)}ᵃ`;
          const dec = r.decMode === 'sync' ? mbs1(r.dec) : `${mbs1(r.dec)}ᵃ`;
          console.log(`| ${k} | ${c.name} | ${r.ratio.toFixed(3)} | ${one} | ${mbsCores(r.async2)} | ${dec} |`);
        }
      }
      console.log('\nᵃ async API, one call in flight (no sync API): MB per CPU-second of all threads.');
      console.log('\\* the best wall-clock run was > 15 % slower than that (the machine was busy).\n');
    }
  }

  // 2. Auto-skip
  if (SECTIONS.includes('2')) {
    console.log('## 2. Auto-skip: trial-compress a sample from the middle of each 1 MiB chunk, skip the chunk if the sample ratio > 0.9\n');
    console.log('Single thread, sync API, MB per CPU-second. "stored" = bytes stored / input (a chunk is stored compressed only if');
    console.log('that saves ≥ 5 %);');
    console.log('"missed" = savings lost on chunks the sample skipped but whole-chunk compression would have compressed.\n');
    console.log('| codec | data | whole chunk | stored | 32 KiB sample first | stored | skipped | missed | 64 KiB sample first | stored | skipped | missed |');
    console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    const skipCodecs = codecs.filter((c) => c.compressSync && /^(node:zlib|zstd-napi L1$|toondepauw L1)/.test(c.name));
    for (const c of skipCodecs) {
      for (const kind of KINDS) {
        const ps = pieces(data.get(kind)!, MiB);
        const wholeLen = ps.map((p) => c.compressSync!(p).length);
        const res = [0, 32 * 1024, 64 * 1024].map((s) => {
          const rs: SkipResult[] = [];
          for (let r = 0; r < REPS; r++) rs.push(skipRun(c.compressSync!, ps, s, wholeLen));
          return { ...rs[0]!, mbs: Math.max(...rs.map((x) => x.mbs)) };
        });
        const [w, s32, s64] = res as [SkipResult, SkipResult, SkipResult];
        const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
        const cell = (r: SkipResult) => `${mbs(r.mbs)} | ${r.stored.toFixed(3)} | ${r.skipped}/${ps.length} | ${pct(r.missed)}`;
        console.log(`| ${c.name} | ${kind} | ${mbs(w.mbs)} | ${w.stored.toFixed(3)} | ${cell(s32)} | ${cell(s64)} |`);
      }
    }
    console.log('');
  }

  // 3. Where async compression runs
  if (SECTIONS.includes('3')) {
    console.log('## 3. Does async compression run off the main thread, beside a busy main thread?\n');
    console.log(`Each run lasts ${OVERLAP_S} s and keeps two async compressions of text pieces in flight. "main ms/MB" and`);
    console.log('"other ms/MB": CPU time of the main thread and of all other threads per MB compressed, from');
    console.log('/proc/self/task/*/stat (10 ms ticks), so they hold even on a shared machine. "+ hashing": the main thread');
    console.log('also hashes 1 MiB buffers (SHA-256), yielding to the event loop after each; "main busy" = main-thread CPU /');
    console.log('wall time, "other cores" = other threads\' CPU / wall time. A sync binding does everything on the main thread.\n');
    console.log('| pieces | codec | alone: MB/s | main ms/MB | other ms/MB | + hashing: hash MB/s | compress MB/s | main busy | other cores |');
    console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    const hashBuf = randomBytes(MiB);
    const pick = (xs: Overlap[]) => xs.reduce((a, b) => (b.compBytes + b.hashBytes > a.compBytes + a.hashBytes ? b : a));
    for (const [size, n] of [['1 MiB', MiB], ['4 KiB', 4096]] as const) {
      const textPs = pieces(data.get('text')!, n);
      for (const c of codecs.filter((x) => x.compressAsync || /^zstd-napi L1$/.test(x.name))) {
        const alone: Overlap[] = [];
        const busy: Overlap[] = [];
        for (let r = 0; r < REPS; r++) {
          alone.push(await overlap(c, textPs, undefined));
          busy.push(await overlap(c, textPs, hashBuf));
        }
        const a = pick(alone);
        const b = pick(busy);
        const perMB = (s: number) => ((s * 1000) / (a.compBytes / 1e6)).toFixed(2);
        const name = c.compressAsync ? c.name : `${c.name} (sync, main thread)`;
        console.log(`| ${size} | ${name} | ${mbs(a.compBytes / a.wall)} | ${perMB(a.mainCpu)} | ${perMB(a.otherCpu)} | ` +
          `${mbs(b.hashBytes / b.wall)} | ${mbs(b.compBytes / b.wall)} | ${(b.mainCpu / b.wall).toFixed(2)} | ${(b.otherCpu / b.wall).toFixed(2)} |`);
      }
    }
    const h: Overlap[] = [];
    for (let r = 0; r < REPS; r++) {
      const t0 = now();
      const c0 = threadCpu();
      const bytes = await hashLoop(hashBuf, () => now() - t0 >= OVERLAP_S);
      const c1 = threadCpu();
      h.push({ wall: now() - t0, hashBytes: bytes, compBytes: 0, mainCpu: c1.main - c0.main, otherCpu: 0 });
    }
    const hb = pick(h);
    console.log(`| — | (hashing alone) | — | — | — | ${mbs(hb.hashBytes / hb.wall)} | — | ${(hb.mainCpu / hb.wall).toFixed(2)} | — |`);
  }
  // 4. Whole tree (optional)
  if (process.env.CODEC_TREE) {
    treeSizes(process.env.CODEC_TREE, codecs.filter((c) => c.compressSync && /^(node:zlib|zstd-napi L[13])/.test(c.name)));
  }

  console.log(`\nFinished ${new Date().toISOString()} (${((Date.now() - started.getTime()) / 1000).toFixed(0)} s), load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}.`);
  for (const c of codecs) await c.close?.();
}

await main();
