// `snap log`: the repository's operation log (docs/automation.md), oldest first. It reads `log/`
// straight from storage without opening the index, so it answers while a long backup or gc holds
// the repository.
import type { Command } from 'commander';
import { displayPath } from '../core/bytes.js';
import { shortId } from '../core/ids.js';
import type { LogRecord } from '../model/oplog.js';
import { readLog } from '../repo/oplog.js';
import type { Ctx } from './context.js';
import { bytes, duration, localDateTime, table } from './format.js';
import { dateOption } from './when.js';
import { isoLocal } from '../view/json.js';

/** An argument as a shell would need it, escaped for the terminal (core/bytes.ts). */
function shellWord(a: string): string {
  const w = /^[A-Za-z0-9_/.,:=@%+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
  return displayPath(w);
}

function recordJson(name: string, r: LogRecord): Record<string, unknown> {
  return { id: name.slice('log/'.length), ...r, start: isoLocal(new Date(r.start)), end: isoLocal(new Date(r.end)) };
}

function snapshotsColumn(r: LogRecord): string {
  const parts: string[] = [];
  if (r.snapshotsAdded.length > 0) parts.push(`+${r.snapshotsAdded.length === 1 ? shortId(r.snapshotsAdded[0]!) : r.snapshotsAdded.length}`);
  if (r.drill) parts.push(`=${shortId(r.drill.snapshot)}`);
  if (r.snapshotsRemoved.length > 0) parts.push(`-${r.snapshotsRemoved.length === 1 ? shortId(r.snapshotsRemoved[0]!) : r.snapshotsRemoved.length}`);
  return parts.join(' ') || '-';
}

function dataColumn(r: LogRecord): string {
  const parts: string[] = [];
  if (r.drill) parts.push(`=${bytes(r.drill.bytesVerified)}`);
  if (r.bytesAdded > 0) parts.push(`+${bytes(r.bytesAdded)}`);
  if (r.bytesFreed > 0) parts.push(`-${bytes(r.bytesFreed)}`);
  return parts.join(' ') || '-';
}

function resultColumn(r: LogRecord): string {
  const base = r.exitCode === 0 ? 'ok' : `${r.result} (${r.exitCode})`;
  return r.error ? `${base} ${r.error.code}` : base;
}

async function showLog(ctx: Ctx, o: { since?: string }): Promise<void> {
  const since = o.since !== undefined ? dateOption('--since', o.since, ctx.clock.now(), 'start') : undefined;
  const { backend } = await ctx.openStorage();
  try {
    const entries = await readLog(backend, { since, signal: ctx.signal });
    let damaged = 0;
    for (const e of entries) {
      if (e.damage) {
        damaged++;
        ctx.sink.warn?.({ code: 'SNAP_CORRUPT', message: `${e.damage} (it holds no backup data: 'snap repair' moves it to quarantine/)` });
      }
    }
    const good = entries.filter((e): e is { name: string; record: LogRecord } => e.record !== undefined);
    if (ctx.json) ctx.out(JSON.stringify(good.map((e) => recordJson(e.name, e.record)), null, 2));
    else if (good.length === 0) ctx.out(since ? 'no operations since then' : 'no operations recorded');
    else {
      const rows = [['Start', 'Took', 'Command', 'Result', 'Snapshots', 'Data', 'By', 'Arguments']];
      for (const { record: r } of good) {
        rows.push([
          localDateTime(new Date(r.start)),
          duration(Date.parse(r.end) - Date.parse(r.start)),
          r.command,
          resultColumn(r),
          snapshotsColumn(r),
          dataColumn(r),
          `${r.user}@${r.host}`,
          r.args.map(shellWord).join(' '),
        ]);
      }
      ctx.out(table(rows));
    }
    if (damaged > 0) ctx.exitCode = 3;
  } finally {
    await backend.close();
  }
}

export function registerLog(program: Command, run: (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>): void {
  program
    .command('log')
    .description('the operation log: every command that changed the repository, oldest first')
    .option('--since <date>', "only operations that started at or after this date ('2026-12-01', yesterday, '3 days ago')")
    .action(async (o: { since?: string }, cmd: Command) => run((ctx) => showLog(ctx, o), cmd));
}
