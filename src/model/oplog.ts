// Operation log records (docs/format.md, "Operation log"): one small JSON object per command
// that changed the repository, stored as `log/<start time>-<random>`. The record is informational:
// no reader of snapshots or packs depends on it, and readers ignore fields they do not know.
import { SnapError } from '../core/errors.js';

export const LOG_PREFIX = 'log/';
export const LOG_FORMAT = 'snap-log';

export type LogResult = 'ok' | 'warnings' | 'failed' | 'interrupted' | 'output-closed';

export interface LogRecord {
  format: typeof LOG_FORMAT;
  v: 1;
  /** The command as typed: `create`, `index rebuild`. */
  command: string;
  /** The arguments after the program name, secrets replaced by `***`. */
  args: string[];
  user: string;
  host: string;
  pid: number;
  program: string;
  /** ISO 8601 UTC, milliseconds: `YYYY-MM-DDTHH:MM:SS.mmmZ`. */
  start: string;
  end: string;
  result: LogResult;
  exitCode: number;
  /** Only when the command ended with an error. */
  error?: { code: string; message: string };
  snapshotsAdded: string[];
  snapshotsRemoved: string[];
  bytesAdded: number;
  bytesFreed: number;
  /** Only in a `drill` record that got as far as its report: what it checked. */
  drill?: DrillSummary;
}

/** What a restore drill checked (docs/format.md, "Operation log"). */
export interface DrillSummary {
  /** The snapshot drilled (64 hex digits). */
  snapshot: string;
  full: boolean;
  filesVerified: number;
  bytesVerified: number;
  /** Files (or a whole restore) that failed. */
  failed: number;
  /** With --against-source: files compared with their source, and skipped. */
  sourceCompared?: number;
  sourceSkipped?: number;
}

export function resultOf(exitCode: number): LogResult {
  if (exitCode === 0) return 'ok';
  if (exitCode === 3) return 'warnings';
  if (exitCode === 130) return 'interrupted';
  if (exitCode === 141) return 'output-closed';
  return 'failed';
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const NAME = /^log\/(\d{8}T\d{6}\.\d{3}Z)-([0-9a-f]{16})$/;

/** `log/20261202T193301.123Z-<16 hex>`: names sort by start time (blob names allow no ':'). */
export function logName(start: Date, random: string): string {
  if (!/^[0-9a-f]{16}$/.test(random)) throw new SnapError('SNAP_INTERNAL', `log record suffix must be 16 hex digits, not ${JSON.stringify(random)}`);
  const iso = start.toISOString();
  if (!ISO.test(iso)) throw new SnapError('SNAP_INTERNAL', `a log record cannot hold the time ${iso}`);
  return `${LOG_PREFIX}${iso.replace(/[-:]/g, '')}-${random}`;
}

/** The start time a name carries (as an ISO string), or undefined for a name that is not a log record's. */
export function logNameTime(name: string): string | undefined {
  const m = NAME.exec(name);
  if (!m) return undefined;
  const s = m[1]!;
  return `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13)}`;
}

export function encodeLogRecord(r: LogRecord): Buffer {
  return Buffer.from(JSON.stringify(r) + '\n', 'utf8');
}

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const isIds = (x: unknown): x is string[] => Array.isArray(x) && x.every((i) => typeof i === 'string' && /^[0-9a-f]{64}$/.test(i));

/** Parse and validate a record; SNAP_CORRUPT says what is wrong. Unknown fields are ignored. */
export function decodeLogRecord(bytes: Uint8Array, name: string): LogRecord {
  const bad = (what: string): SnapError => new SnapError('SNAP_CORRUPT', `log record ${name} is damaged: ${what}`);
  let o: unknown;
  try {
    o = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw bad('not JSON');
  }
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw bad('not a JSON object');
  const r = o as Record<string, unknown>;
  if (r.format !== LOG_FORMAT) throw bad(`format is not "${LOG_FORMAT}"`);
  if (r.v !== 1) throw bad(`unknown version ${JSON.stringify(r.v)}`);
  for (const k of ['command', 'user', 'host', 'program', 'result'] as const) if (typeof r[k] !== 'string') throw bad(`${k} is not text`);
  for (const k of ['start', 'end'] as const) if (typeof r[k] !== 'string' || !ISO.test(r[k]) || Number.isNaN(Date.parse(r[k]))) throw bad(`${k} is not a time`);
  if (!Array.isArray(r.args) || !r.args.every((a) => typeof a === 'string')) throw bad('args is not a list of text');
  if (!isCount(r.pid)) throw bad('pid is not a number');
  if (typeof r.exitCode !== 'number' || !Number.isSafeInteger(r.exitCode)) throw bad('exitCode is not a number');
  if (!isIds(r.snapshotsAdded) || !isIds(r.snapshotsRemoved)) throw bad('snapshotsAdded/snapshotsRemoved are not lists of snapshot ids');
  if (!isCount(r.bytesAdded) || !isCount(r.bytesFreed)) throw bad('bytesAdded/bytesFreed are not counts');
  if (r.drill !== undefined) {
    const d = r.drill as Record<string, unknown> | null;
    const counts = ['filesVerified', 'bytesVerified', 'failed'].every((k) => isCount(d?.[k])) && ['sourceCompared', 'sourceSkipped'].every((k) => d?.[k] === undefined || isCount(d[k]));
    if (!d || typeof d !== 'object' || !isIds([d.snapshot]) || typeof d.full !== 'boolean' || !counts) throw bad('drill is not {snapshot, full, filesVerified, bytesVerified, failed}');
  }
  if (r.error !== undefined) {
    const e = r.error as Record<string, unknown> | null;
    if (!e || typeof e !== 'object' || typeof e.code !== 'string' || typeof e.message !== 'string') throw bad('error is not {code, message}');
  }
  const t = logNameTime(name);
  if (t !== undefined && t !== r.start) throw bad(`its name says it started at ${t}, the record says ${r.start as string}`);
  return r as unknown as LogRecord;
}

/** Option names whose values are secrets: never written to the log. */
const SECRET_OPTION = /pass(word|phrase)?|secret|token|credential|private|api-?key|access-?key/i;

/** The options among `args` whose values would be secrets (`--password`), before any `--`. */
export function secretOptions(args: string[]): string[] {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).filter((a) => a.startsWith('--') && SECRET_OPTION.test(a.split('=')[0]!));
}

/**
 * The arguments with secrets removed: the value of an option whose name looks secret
 * (`--password X`, `--token=X`), and the password of a URL (`s3://user:pw@host` ->
 * `s3://user:***@host`) anywhere.
 */
export function redactArgs(args: string[]): string[] {
  const out: string[] = [];
  let hideNext = false;
  let rest = false;
  for (const a of args) {
    if (hideNext) {
      out.push('***');
      hideNext = false;
      continue;
    }
    if (!rest && a === '--') rest = true;
    else if (!rest && a.startsWith('--') && SECRET_OPTION.test(a.split('=')[0]!)) {
      if (a.includes('=')) out.push(`${a.slice(0, a.indexOf('='))}=***`);
      else {
        out.push(a);
        hideNext = true;
      }
      continue;
    }
    out.push(a.replace(/([A-Za-z][A-Za-z0-9+.-]*:\/\/[^/\s:@]*):[^@\s/]*@/g, '$1:***@'));
  }
  return out;
}
