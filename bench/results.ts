// Raw results: one row per tool, round and step; stored as TSV next to a JSON file of run metadata.
import * as fs from 'node:fs';
import type { StepName } from './steps.js';

export type Status = 'ok' | 'warnings' | 'n/a' | 'failed';

export interface Row {
  tool: string;
  round: number;
  /** Position of the tool in this round's order (1 = ran first). */
  order: number;
  step: StepName;
  status: Status;
  /** Why a step is n/a or failed. */
  note: string;
  wallS: number;
  userS: number;
  sysS: number;
  maxRssKb: number;
  /** `du -sb` of the repository's stored data after the step (snap: without its local index). */
  repoBytes: number;
  /** `du -sb` of local derived state: restic's and borg's cache directories, snap's `index/`. */
  cacheBytes: number;
}

const COLUMNS = ['tool', 'round', 'order', 'step', 'status', 'note', 'wall_s', 'user_s', 'sys_s', 'maxrss_kb', 'repo_bytes', 'cache_bytes'] as const;

export function toTsv(rows: Row[]): string {
  const lines = rows.map((r) =>
    [r.tool, r.round, r.order, r.step, r.status, r.note.replace(/[\t\n]/g, ' '), r.wallS, r.userS, r.sysS, r.maxRssKb, r.repoBytes, r.cacheBytes].join('\t'),
  );
  return [COLUMNS.join('\t'), ...lines].join('\n') + '\n';
}

export function fromTsv(text: string): Row[] {
  const [head, ...lines] = text.trim().split('\n');
  if (head !== COLUMNS.join('\t')) throw new Error('unexpected TSV header');
  return lines.map((l) => {
    const c = l.split('\t');
    return {
      tool: c[0]!,
      round: Number(c[1]),
      order: Number(c[2]),
      step: c[3] as StepName,
      status: c[4] as Status,
      note: c[5] ?? '',
      wallS: Number(c[6]),
      userS: Number(c[7]),
      sysS: Number(c[8]),
      maxRssKb: Number(c[9]),
      repoBytes: Number(c[10]),
      cacheBytes: Number(c[11]),
    };
  });
}

/** Everything the report says besides the rows. */
export interface RunMeta {
  date: string;
  rounds: number;
  tools: { name: string; version: string }[];
  machine: Record<string, string>;
  corpus: { digest: string; files: number; bytes: number; bigMib: number };
  /** Tools asked for but not installed, with what to run. */
  missing: string[];
  /** Round-1 restore checks: tool -> "OK" or what differed. */
  restoreCheck: Record<string, string>;
  mutateSummary?: string;
  /** 1-minute load averages sampled after each tool run (the benchmark itself adds 1–2). */
  loadAvg?: number[];
  /** What the restores went into (bench/restore-fs.ts); absent in runs from before it was recorded (a folder). */
  restoreFs?: 'fresh ext4' | 'folder';
}

export function saveResults(tsvFile: string, metaFile: string, rows: Row[], meta: RunMeta): void {
  fs.writeFileSync(tsvFile, toTsv(rows));
  fs.writeFileSync(metaFile, JSON.stringify(meta, null, 2) + '\n');
}

export function loadResults(tsvFile: string, metaFile: string): { rows: Row[]; meta: RunMeta } {
  return { rows: fromTsv(fs.readFileSync(tsvFile, 'utf8')), meta: JSON.parse(fs.readFileSync(metaFile, 'utf8')) as RunMeta };
}
