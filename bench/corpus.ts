// The benchmark corpus: built once by the bench kit's make-dataset.sh, reused while its manifest
// digest matches the one recorded when it was built, copied afresh for every tool run.
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { capture, runLogged } from './measure.js';
import { kitScript } from './paths.js';

export interface CorpusInfo {
  dir: string;
  /** First 16 hex digits of the SHA-256 of MANIFEST.sha256, as make-dataset.sh prints it. */
  digest: string;
  bigMib: number;
  files: number;
  bytes: number;
  reused: boolean;
}

interface CorpusRecord {
  digest: string;
  bigMib: number;
  built: string;
}

const MANIFEST = 'MANIFEST.sha256';

/** Build the corpus under `dir` unless a corpus with a matching manifest digest is already there. */
export function ensureCorpus(dir: string, bigMib: number, log: string, expectDigest?: string): CorpusInfo {
  const recordFile = `${dir}.json`;
  let reused = false;
  if (fs.existsSync(path.join(dir, MANIFEST))) {
    checkExisting(dir, recordFile, bigMib, log);
    reused = true;
  } else {
    build(dir, bigMib, log);
    writeRecord(recordFile, { digest: manifestDigest(dir), bigMib, built: new Date().toISOString() });
  }
  const digest = manifestDigest(dir);
  if (expectDigest && expectDigest !== digest) {
    throw new Error(`corpus ${dir} has manifest digest ${digest}, expected ${expectDigest} (it depends on what is installed: see bench-kit/README.md)`);
  }
  return { dir, digest, bigMib, reused, ...corpusSize(dir) };
}

function checkExisting(dir: string, recordFile: string, bigMib: number, log: string): void {
  const digest = manifestDigest(dir);
  const rec = readRecord(recordFile);
  if (rec && rec.digest === digest && rec.bigMib === bigMib) return;
  if (rec) {
    throw new Error(
      `corpus ${dir} does not match its record ${recordFile} (digest ${digest} vs ${rec.digest}, big ${bigMib} vs ${rec.bigMib} MiB): ` +
        `remove both to rebuild it, or use another --work directory`,
    );
  }
  // A corpus built by hand (no record yet): trust it only if every file matches its manifest.
  process.stderr.write(`bench: verifying existing corpus ${dir} against its manifest\n`);
  runLogged('sha256sum', ['-c', '--quiet', MANIFEST], { cwd: dir, log });
  const bigSize = fs.statSync(path.join(dir, 'big', 'random.bin')).size;
  if (bigSize !== bigMib * 1024 * 1024) throw new Error(`corpus ${dir} was built with other big-file sizes (${bigSize} bytes); use --big-mib ${bigSize / 1048576}`);
  writeRecord(recordFile, { digest, bigMib, built: fs.statSync(path.join(dir, MANIFEST)).birthtime.toISOString() });
}

function build(dir: string, bigMib: number, log: string): void {
  process.stderr.write(`bench: building the corpus in ${dir} (make-dataset.sh, about a minute)\n`);
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  runLogged(kitScript('make-dataset.sh'), [dir, String(bigMib)], { log });
}

export function manifestDigest(dir: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, MANIFEST))).digest('hex').slice(0, 16);
}

function corpusSize(dir: string): { files: number; bytes: number } {
  const files = fs.readFileSync(path.join(dir, MANIFEST), 'utf8').split('\n').filter((l) => l !== '').length;
  const out = capture('du', ['-sb', '--apparent-size', '-c', path.join(dir, 'src'), path.join(dir, 'big')]);
  const total = out.trim().split('\n').pop() ?? '';
  return { files, bytes: Number(total.split('\t')[0]) };
}

function readRecord(file: string): CorpusRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as CorpusRecord;
  } catch {
    return undefined;
  }
}

function writeRecord(file: string, rec: CorpusRecord): void {
  fs.writeFileSync(file, JSON.stringify(rec, null, 2) + '\n');
}

/** A fresh copy of the corpus at `data` (same path every run), without its manifest; synced to disk. */
export function freshCopy(corpus: string, data: string): void {
  fs.rmSync(data, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(data), { recursive: true });
  const r = spawnSync('cp', ['-a', corpus, data], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`cp -a ${corpus} ${data} failed`);
  fs.rmSync(path.join(data, MANIFEST), { force: true });
  spawnSync('sync');
}

/**
 * A digest of every regular file below `dir`: relative path and SHA-256 of the content, in bytewise
 * path order. Two trees with the same files and contents have the same sum.
 */
export function treeSum(dir: string): { sum: string; files: number } {
  const files = regularFiles(dir, Buffer.alloc(0)).sort(Buffer.compare);
  const all = crypto.createHash('sha256');
  for (const rel of files) {
    const h = crypto.createHash('sha256').update(fs.readFileSync(Buffer.concat([Buffer.from(dir), rel])));
    all.update(rel).update('\0').update(h.digest()).update('\n');
  }
  return { sum: all.digest('hex').slice(0, 16), files: files.length };
}

function regularFiles(root: string, rel: Buffer): Buffer[] {
  const abs = Buffer.concat([Buffer.from(root), rel]);
  const out: Buffer[] = [];
  for (const e of fs.readdirSync(abs, { withFileTypes: true, encoding: 'buffer' })) {
    const child = Buffer.concat([rel, Buffer.from('/'), e.name]);
    if (e.isDirectory()) out.push(...regularFiles(root, child));
    else if (e.isFile()) out.push(child);
  }
  return out;
}
