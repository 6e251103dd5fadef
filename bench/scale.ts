// `npm run bench:scale`: snap (encrypted and plain) and restic, side by side, on many small files
// (100k and 1M by default) and on one large file (1 and 10 GiB by default): backup, backup again
// unchanged, restore (small files only); wall time and peak RSS. Writes
// bench/results/scale-latest.{tsv,json} and the "bench-scale" section of docs/performance.md.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { describeMachine } from './machine.js';
import { replaceSection } from './markers.js';
import { duBytes, GNU_TIME, hasExecutable, runLogged, timed } from './measure.js';
import { PERFORMANCE_MD, RESULTS_DIR } from './paths.js';
import { type RunDirs, type ToolDriver, resticDriver, snapDriver, snapEncryptedDriver } from './tools.js';
import { type Generated, type LargeKind, largeFile, smallFileTree } from './scale-data.js';
import { type ScaleMeta, type ScaleRow, scaleSection, loadScale, saveScale } from './scale-report.js';
import { say } from './sequence.js';
import { freshRestoreTarget, restoreFsKind } from './restore-fs.js';

const LATEST_TSV = path.join(RESULTS_DIR, 'scale-latest.tsv');
const LATEST_JSON = path.join(RESULTS_DIR, 'scale-latest.json');

const USAGE = `usage: npm run bench:scale -- [options]
  --work DIR        work folder ($SNAP_SCALE_DIR, default /tmp/snap-bench-scale)
  --files LIST      small-file counts, comma-separated ($SNAP_SCALE_FILES, default 100000,1000000; "" for none)
  --large-gib LIST  large-file sizes in GiB ($SNAP_SCALE_LARGE_GIB, default 1,10; "" for none)
  --large-kind K    sparse (default: 1 MiB of data every 16 MiB, holes between; 1/16 of the size on disk)
                    or random (incompressible throughout; needs twice the size free on disk)
  --tools LIST      tools, comma-separated, in the order they run on each input
                    (default snap-enc,snap,restic; a tool that is not installed is left out)
  --merge           keep the rows of other inputs from bench/results/scale-latest.tsv
  --keep            keep the generated inputs for the next run (default: keep; --no-keep deletes them)
  --no-keep
  --report-only     rewrite the section from bench/results/scale-latest.*
  --no-docs         leave docs/ and bench/results/ alone`;

interface ScaleOptions {
  tools: string[];
  work: string;
  files: number[];
  largeGib: number[];
  largeKind: LargeKind;
  merge: boolean;
  keep: boolean;
  reportOnly: boolean;
  docs: boolean;
}

function parseOptions(argv: string[]): ScaleOptions {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      work: { type: 'string' },
      files: { type: 'string' },
      'large-gib': { type: 'string' },
      'large-kind': { type: 'string' },
      tools: { type: 'string' },
      merge: { type: 'boolean' },
      keep: { type: 'boolean' },
      'no-keep': { type: 'boolean' },
      'report-only': { type: 'boolean' },
      'no-docs': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const list = (s: string): number[] => s.split(',').filter((x) => x.trim() !== '').map(Number).filter((x) => x > 0);
  const tools = (v.tools ?? 'snap-enc,snap,restic').split(',').map((t) => t.trim()).filter((t) => t !== '');
  for (const t of tools) if (!(t in SCALE_TOOLS)) throw new Error(`--tools: no tool '${t}' (${Object.keys(SCALE_TOOLS).join(', ')})`);
  return {
    tools,
    work: v.work ?? process.env.SNAP_SCALE_DIR ?? '/tmp/snap-bench-scale',
    files: list(v.files ?? process.env.SNAP_SCALE_FILES ?? '100000,1000000'),
    largeGib: list(v['large-gib'] ?? process.env.SNAP_SCALE_LARGE_GIB ?? '1,10'),
    largeKind: largeKind(v['large-kind'] ?? 'sparse'),
    merge: v.merge === true,
    keep: v['no-keep'] !== true,
    reportOnly: v['report-only'] === true,
    docs: v['no-docs'] !== true,
  };
}

function largeKind(s: string): LargeKind {
  if (s !== 'sparse' && s !== 'random') throw new Error(`--large-kind must be sparse or random (not '${s}')`);
  return s;
}

/** The tools this benchmark can run: the main benchmark's drivers, snap's from a copy of its own. */
const SCALE_TOOLS: Record<string, () => ToolDriver> = {
  'snap-enc': () => snapEncryptedDriver('scale'),
  snap: () => snapDriver(undefined, 'scale'),
  restic: resticDriver,
};

interface Tool {
  driver: ToolDriver;
  log: string;
}

function main(): void {
  const o = parseOptions(process.argv.slice(2));
  if (o.reportOnly) return writeDoc(loadScale(LATEST_TSV, LATEST_JSON));
  if (!hasExecutable(GNU_TIME)) {
    say('GNU time is needed to measure peak RSS: run `apt-get install time` (as root), then try again');
    process.exit(2);
  }
  fs.mkdirSync(o.work, { recursive: true });
  const tools: Tool[] = [];
  const versions: Record<string, string> = {};
  for (const name of o.tools) {
    const driver = SCALE_TOOLS[name]!();
    const missing = driver.missing();
    if (missing) {
      say(`${name} is not installed (${missing}): left out`);
      continue;
    }
    const log = path.join(o.work, `${name}.log`);
    fs.writeFileSync(log, '');
    tools.push({ driver, log });
    versions[name] = driver.version();
  }
  const rows: ScaleRow[] = [];
  const meta: ScaleMeta = { date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), machine: describeMachine(), generated: [], tools: versions, restoreFs: restoreFsKind() };
  const save = (): void => saveScale(path.join(o.work, 'partial.tsv'), path.join(o.work, 'partial.json'), rows, meta);
  for (const n of o.files) {
    say(`small files: ${n}`);
    const input = smallFileTree(path.join(o.work, `files-${n}`), n);
    meta.generated.push({ input: `${n.toLocaleString('en-US')} files`, seconds: input.seconds, bytes: input.bytes });
    for (const t of tools) rows.push(...runCase(t, o.work, { label: `${n.toLocaleString('en-US')} files`, kind: 'files' }, input, true));
    if (!o.keep) fs.rmSync(path.dirname(input.dir), { recursive: true, force: true });
    save();
  }
  for (const gib of o.largeGib) {
    const label = `one ${gib} GiB file, ${o.largeKind}`;
    say(label);
    const input = largeFile(path.join(o.work, `large-${gib}g`), Math.round(gib * 2 ** 30), o.largeKind);
    meta.generated.push({ input: label, seconds: input.seconds, bytes: input.bytes });
    for (const t of tools) rows.push(...runCase(t, o.work, { label, kind: o.largeKind }, input, false));
    if (!o.keep) fs.rmSync(path.dirname(input.dir), { recursive: true, force: true });
    save();
  }
  if (o.docs) {
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    const all = o.merge && fs.existsSync(LATEST_TSV) ? mergeRows(loadScale(LATEST_TSV, LATEST_JSON), rows, meta) : { rows, meta };
    saveScale(LATEST_TSV, LATEST_JSON, all.rows, all.meta);
    writeDoc(all);
  }
  if (rows.some((r) => r.status !== 'ok')) process.exitCode = 1;
}

/** The previous results of other inputs (for every tool), then this run's. */
function mergeRows(old: { rows: ScaleRow[]; meta: ScaleMeta }, rows: ScaleRow[], meta: ScaleMeta): { rows: ScaleRow[]; meta: ScaleMeta } {
  const fresh = new Set(rows.map((r) => r.input));
  // Rows of an input this run measured are all replaced, whichever tools measured them before.
  const kept = old.rows.filter((r) => !fresh.has(r.input));
  const keptInputs = new Set(kept.map((r) => r.input));
  return {
    rows: [...kept, ...rows],
    meta: { ...meta, generated: [...old.meta.generated.filter((g) => keptInputs.has(g.input)), ...meta.generated], earlier: old.meta.earlier ?? old.meta.date },
  };
}

/** Fresh repository: backup, backup again, and (for file trees) restore into an empty folder. */
function runCase(tool: Tool, work: string, what: { label: string; kind: ScaleRow['kind'] }, input: Generated, restore: boolean): ScaleRow[] {
  const label = what.label;
  const t = tool.driver;
  const d: RunDirs = { data: input.dir, repo: path.join(work, 'repo'), cache: path.join(work, 'cache'), restore: path.join(work, 'restore'), log: tool.log };
  for (const p of [d.repo, d.cache, d.restore]) fs.rmSync(p, { recursive: true, force: true });
  const env = t.env(d);
  const init = t.init(d);
  runLogged(init.cmd, init.args, { log: tool.log, env });
  const rows: ScaleRow[] = [];
  const step = (name: ScaleRow['step'], c: ReturnType<ToolDriver['backup']>): void => {
    if ('unavailable' in c) return;
    const r = timed(c.cmd, c.args, { log: tool.log, env, cwd: c.cwd });
    const sizes = t.sizes(d, duBytes);
    const row: ScaleRow = { tool: t.name, input: label, kind: what.kind, files: input.files, bytes: input.bytes, step: name, status: r.exitCode === 0 ? 'ok' : `exit ${r.exitCode}`, ...r.usage, repoBytes: sizes.repo + sizes.cache };
    rows.push(row);
    say(`${t.name}: ${label} ${name}: ${row.status}, ${row.wallS} s wall, ${Math.round(row.maxRssKb / 1024)} MiB peak RSS`);
  };
  step('backup', t.backup(d, 1));
  step('backup_unchanged', t.backup(d, 2));
  if (restore) {
    // Into a fresh ext4 of its own (bench/restore-fs.ts): a folder of the work disk, which has
    // just lost the other tool's restored files, made the same restore 6 times slower.
    const undo = freshRestoreTarget(d.restore, path.join(work, 'restore.img'), { files: input.files + input.files / 50 });
    try {
      step('restore', t.restoreLatest(d));
    } finally {
      undo();
    }
  }
  for (const p of [d.repo, d.cache, d.restore]) fs.rmSync(p, { recursive: true, force: true });
  return rows;
}

function writeDoc(r: { rows: ScaleRow[]; meta: ScaleMeta }): void {
  replaceSection(PERFORMANCE_MD, 'bench-scale', scaleSection(r.rows, r.meta));
  say(`wrote ${path.relative(process.cwd(), PERFORMANCE_MD)} (section "bench-scale")`);
}

try {
  main();
} catch (e) {
  say(`error: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
}
