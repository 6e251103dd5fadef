// One run of one tool: fresh corpus copy and repository, then every step, each timed.
import * as fs from 'node:fs';
import { freshCopy, treeSum } from './corpus.js';
import { capture, duBytes, runLogged, timed } from './measure.js';
import { kitScript } from './paths.js';
import type { Row } from './results.js';
import type { StepName } from './steps.js';
import type { Command, RunDirs, ToolDriver } from './tools.js';
import { freshRestoreTarget } from './restore-fs.js';

export interface RunSpec {
  corpus: string;
  dirs: RunDirs;
  round: number;
  order: number;
  /** Compare the restored tree with the source (round 1). */
  verify: boolean;
}

export interface RunOutcome {
  rows: Row[];
  /** "OK" or what differed; undefined when not verified. */
  restoreCheck?: string;
  mutateSummary: string;
}

export function runTool(t: ToolDriver, s: RunSpec): RunOutcome {
  const d = s.dirs;
  const env = t.env(d);
  const rows: Row[] = [];
  const step = (name: StepName, c: Command): void => {
    rows.push(timedStep(t, s, name, c, env));
    say(`${t.name} round ${s.round}: ${describe(rows[rows.length - 1]!)}`);
  };
  prepare(s);
  const init = t.init(d);
  runLogged(init.cmd, init.args, { log: d.log, env });

  step('backup1_initial', t.backup(d, 1));
  step('backup2_nochange', t.backup(d, 2));
  const mutateSummary = capture(kitScript('mutate.sh'), [d.data, '1']).trim();
  step('backup3_mutated', t.backup(d, 3));
  // A fresh file system for the restore where the bench may mount one (bench/restore-fs.ts).
  const undoTarget = freshRestoreTarget(d.restore, `${d.restore}.img`);
  let restoreCheck: string | undefined;
  try {
    step('restore_latest', t.restoreLatest(d));
    restoreCheck = s.verify ? compareRestore(d.data, t.restoredData(d)) : undefined;
  } finally {
    undoTarget();
  }
  step('check_read_data', t.checkReadData(d));
  step('forget_first', t.forgetFirst(d));
  step('gc_prune', t.gc(d));
  return { rows, restoreCheck, mutateSummary };
}

function prepare(s: RunSpec): void {
  const d = s.dirs;
  for (const p of [d.repo, d.cache, d.restore]) fs.rmSync(p, { recursive: true, force: true });
  freshCopy(s.corpus, d.data);
}

function timedStep(t: ToolDriver, s: RunSpec, step: StepName, c: Command, env: NodeJS.ProcessEnv): Row {
  const base = { tool: t.name, round: s.round, order: s.order, step };
  const sizes = (): { repoBytes: number; cacheBytes: number } => {
    const z = t.sizes(s.dirs, duBytes);
    return { repoBytes: z.repo, cacheBytes: z.cache };
  };
  if ('unavailable' in c) {
    return { ...base, status: 'n/a', note: c.unavailable, wallS: NaN, userS: NaN, sysS: NaN, maxRssKb: NaN, ...sizes() };
  }
  const r = timed(c.cmd, c.args, { log: s.dirs.log, cwd: c.cwd, env });
  const status = r.exitCode === 0 ? 'ok' : t.name === 'snap' && r.exitCode === 3 ? 'warnings' : 'failed';
  const note = status === 'ok' ? '' : `exit ${r.exitCode} (see ${s.dirs.log})`;
  return { ...base, status, note, ...r.usage, ...sizes() };
}

/** "OK", or a description of how the restored tree differs from the source. */
function compareRestore(source: string, restored: string): string {
  if (!fs.existsSync(restored)) return `MISMATCH: nothing restored at ${restored}`;
  const a = treeSum(source);
  const b = treeSum(restored);
  return a.sum === b.sum && a.files === b.files
    ? 'OK'
    : `MISMATCH: source ${a.files} files, sum ${a.sum}; restored ${b.files} files, sum ${b.sum}`;
}

function describe(r: Row): string {
  if (r.status === 'n/a' || r.status === 'failed') return `${r.step}: ${r.status} ${r.note}`;
  return `${r.step}: ${r.wallS.toFixed(2)} s wall, ${(r.userS + r.sysS).toFixed(1)} s CPU, ${Math.round(r.maxRssKb / 1024)} MiB RSS, repo ${(r.repoBytes / 1e6).toFixed(1)} MB${r.status === 'warnings' ? ' (warnings)' : ''}`;
}

export function say(s: string): void {
  process.stderr.write(`bench: ${s}\n`);
}
