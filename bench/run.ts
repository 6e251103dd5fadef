// `npm run bench`: snap against restic and borg on the bench kit's corpus (issue 5).
// Builds (or reuses) the corpus, runs every tool's sequence per round in alternating order,
// writes bench/results/latest.{tsv,json}, the "bench" section of docs/performance.md and the chart.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { wallChart } from './chart.js';
import { ensureCorpus } from './corpus.js';
import { describeMachine } from './machine.js';
import { replaceSection } from './markers.js';
import { GNU_TIME, hasExecutable } from './measure.js';
import { parseOptions, type BenchOptions } from './options.js';
import { PERFORMANCE_MD, PERFORMANCE_SVG, RESULTS_DIR } from './paths.js';
import { benchSection } from './report.js';
import { loadResults, type Row, type RunMeta, saveResults } from './results.js';
import { runTool, say } from './sequence.js';
import { ALL_TOOLS, type RunDirs, type ToolDriver } from './tools.js';
import { restoreFsKind } from './restore-fs.js';

const LATEST_TSV = path.join(RESULTS_DIR, 'latest.tsv');
const LATEST_JSON = path.join(RESULTS_DIR, 'latest.json');

function main(): void {
  const o = parseOptions(process.argv.slice(2));
  if (o.reportOnly) {
    const { rows, meta } = loadResults(LATEST_TSV, LATEST_JSON);
    return writeDocs(rows, meta);
  }
  requireGnuTime();
  const { drivers, missing } = pickTools(o.tools);
  const { rows, meta } = measure(o, drivers, missing);
  if (o.docs) {
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    saveResults(LATEST_TSV, LATEST_JSON, rows, meta);
    writeDocs(rows, meta);
  }
  const failed = rows.filter((r) => r.status === 'failed');
  if (failed.length) {
    say(`${failed.length} step(s) failed: ${failed.map((r) => `${r.tool}/${r.round}/${r.step}`).join(', ')}`);
    process.exitCode = 1;
  }
}

function requireGnuTime(): void {
  if (hasExecutable(GNU_TIME)) return;
  say(`GNU time is needed to measure CPU time and peak RSS: run \`apt-get install time\` (as root), then try again`);
  process.exit(2);
}

/** The drivers of the tools that are installed; says what to install for the others. */
function pickTools(names: string[]): { drivers: ToolDriver[]; missing: string[] } {
  const drivers: ToolDriver[] = [];
  const missing: string[] = [];
  const packages: string[] = [];
  for (const name of names) {
    const make = ALL_TOOLS[name];
    if (!make) throw new Error(`unknown tool '${name}' (known: ${Object.keys(ALL_TOOLS).join(', ')})`);
    const d = make();
    const need = d.missing();
    if (need === '') drivers.push(d);
    else if (name === 'snap') throw new Error(`snap is not built: run \`${need}\``);
    else {
      missing.push(`${name} (\`${need}\`)`);
      packages.push(need.replace(/^apt-get install /, ''));
    }
  }
  if (packages.length) {
    say(`not installed, so not measured: ${missing.join(', ')}. To include them run: apt-get install ${packages.join(' ')}  (or leave them out with --skip)`);
  }
  return { drivers, missing };
}

function measure(o: BenchOptions, drivers: ToolDriver[], missing: string[]): { rows: Row[]; meta: RunMeta } {
  fs.mkdirSync(o.work, { recursive: true });
  const logs = path.join(o.work, 'logs');
  fs.mkdirSync(logs, { recursive: true });
  const corpus = ensureCorpus(path.join(o.work, 'corpus'), o.bigMib, path.join(logs, 'corpus.log'), o.corpusDigest);
  say(`corpus ${corpus.dir}: ${corpus.files} files, ${corpus.bytes} bytes, digest ${corpus.digest}${corpus.reused ? ' (reused)' : ''}`);
  const meta: RunMeta = {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    rounds: o.rounds,
    tools: drivers.map((d) => ({ name: d.name, version: d.version() })),
    machine: describeMachine(),
    corpus: { digest: corpus.digest, files: corpus.files, bytes: corpus.bytes, bigMib: corpus.bigMib },
    missing,
    restoreCheck: {},
    loadAvg: [],
    restoreFs: restoreFsKind(),
  };
  const rows: Row[] = [];
  for (const d of drivers) fs.writeFileSync(path.join(logs, `${d.name}.log`), '');
  for (let round = 1; round <= o.rounds; round++) {
    const order = round % 2 === 1 ? drivers : [...drivers].reverse();
    order.forEach((d, i) => {
      const out = runTool(d, { corpus: corpus.dir, dirs: runDirs(o.work, logs, d), round, order: i + 1, verify: round === 1 });
      rows.push(...out.rows);
      meta.mutateSummary = out.mutateSummary;
      meta.loadAvg!.push(Number(os.loadavg()[0]!.toFixed(2)));
      if (out.restoreCheck) meta.restoreCheck[d.name] = out.restoreCheck;
      saveResults(path.join(o.work, 'partial.tsv'), path.join(o.work, 'partial.json'), rows, meta);
      if (out.restoreCheck && out.restoreCheck !== 'OK') {
        const msg = `${d.name} restore differs from the source: ${out.restoreCheck}`;
        if (d.name === 'snap') throw new Error(`RESTORE IS NOT BYTE-EXACT: ${msg}`);
        say(`warning: ${msg}`);
      }
    });
  }
  return { rows, meta };
}

function runDirs(work: string, logs: string, d: ToolDriver): RunDirs {
  const run = path.join(work, 'run');
  return {
    data: path.join(run, 'data'),
    repo: path.join(run, 'repo'),
    cache: path.join(run, 'cache'),
    restore: path.join(run, 'restore'),
    log: path.join(logs, `${d.name}.log`),
  };
}

function writeDocs(rows: Row[], meta: RunMeta): void {
  const tools = meta.tools.map((t) => t.name);
  fs.writeFileSync(PERFORMANCE_SVG, wallChart(rows, tools, `Wall time per step, median of ${meta.rounds} round(s), ${meta.date.slice(0, 10)}`));
  replaceSection(PERFORMANCE_MD, 'bench', benchSection(rows, meta, path.basename(PERFORMANCE_SVG)));
  say(`wrote ${path.relative(process.cwd(), PERFORMANCE_MD)} (section "bench") and ${path.relative(process.cwd(), PERFORMANCE_SVG)}`);
}

try {
  main();
} catch (e) {
  say(`error: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
}
