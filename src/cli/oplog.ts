// The operation log's writer, called once from the CLI's single exit path (main.ts) after a
// command ended, whichever way: it appends one record to the repository when the command is one
// that changes it (or changed it anyway). Writing the log never changes the command's exit code:
// a record that cannot be written is a warning.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SnapError } from '../core/errors.js';
import { fsPath } from '../core/bytes.js';
import type { RepoLocation } from '../repo/location.js';
import { remoteStorage } from '../repo/storage.js';
import { Repository } from '../repo/repository.js';
import { CONFIG } from '../repo/layout.js';
import { appendLogRecord } from '../repo/oplog.js';
import { type LogRecord, redactArgs, resultOf } from '../model/oplog.js';
import type { Ctx } from './context.js';
import { VERSION } from './version.js';

/** Commands that change the repository, and restore drills (the proof that it restores): each run is logged, whether it succeeded or not. */
export const LOGGED_COMMANDS = new Set(['init', 'create', 'forget', 'gc', 'repair', 'tag', 'rewrite', 'index rebuild', 'copy', 'drill']);

/** The error a failed command ended with, as the log records it (the code users see). */
function errorOf(e: unknown): { code: string; message: string } | undefined {
  if (e === undefined) return undefined;
  if (e instanceof SnapError) return { code: e.code, message: e.message };
  return { code: 'SNAP_INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

export function buildRecord(ctx: Ctx, args: string[], start: Date, end: Date, exitCode: number, error: unknown): LogRecord {
  const c = ctx.changes;
  const rec: LogRecord = {
    format: 'snap-log',
    v: 1,
    command: ctx.command,
    args: redactArgs(args),
    user: ctx.host.username,
    host: ctx.host.hostname,
    pid: ctx.host.pid,
    program: `snap ${VERSION}`,
    start: start.toISOString(),
    end: end.toISOString(),
    result: resultOf(exitCode),
    exitCode,
    snapshotsAdded: [...c.snapshotsAdded].sort(),
    snapshotsRemoved: [...c.snapshotsRemoved].sort(),
    bytesAdded: c.bytesAdded,
    bytesFreed: c.bytesFreed,
  };
  if (ctx.drilled) rec.drill = ctx.drilled;
  const err = errorOf(error);
  if (err && exitCode !== 0 && exitCode !== 3) rec.error = err;
  return rec;
}

/**
 * Append the record of a command that ended (`always`: even one that changed nothing, as `snap
 * watch` records each failed backup). Only where a repository is (its `config` exists):
 * a command that failed because there is none leaves nothing behind.
 */
export async function recordOperation(ctx: Ctx, args: string[], start: Date, exitCode: number, error: unknown, o: { always?: boolean } = {}): Promise<void> {
  if (!o.always && !LOGGED_COMMANDS.has(ctx.command) && !ctx.changes.changed) return;
  // A repository whose config was refused (damaged, changed, or saying "plain" where the repository
  // is encrypted) gets nothing written: a record written by the config's word could be in the clear.
  if (error instanceof SnapError && error.code === 'SNAP_BAD_CONFIG') return;
  // Nothing can be written there now (the command failed for it): no second message saying so.
  if (error instanceof SnapError && error.code === 'SNAP_READ_ONLY') return;
  let location: RepoLocation;
  try {
    location = ctx.repoPath().location;
  } catch {
    return; // an unusable --repo: the command failed before touching any repository
  }
  if (location.kind === 'local' && !fs.existsSync(fsPath(path.join(path.resolve(location.path), CONFIG)))) return;
  const record = buildRecord(ctx, args, start, new Date(), exitCode, error);
  let backend: Awaited<ReturnType<typeof Repository.openStorage>>['backend'] | undefined;
  try {
    // The storage as Repository.open checks it (config, owner, a config that says "plain" where
    // the repository is encrypted), with the keys this command unlocked: an encrypted repository's
    // records are sealed like everything else (docs/format.md, "Format 2"), and a command that
    // never opened its keys (a wrong password) cannot log. No password is asked for again.
    let opened;
    try {
      opened = await Repository.openStorage(ctx.repoPath().path, { ...ctx.repoOptions(), changes: undefined, password: undefined, remote: await remoteStorage(location, process.env, ctx.signal) });
    } catch (e) {
      // No repository there (a failed init leaves nothing), or keys this command never unlocked.
      if (e instanceof SnapError && (e.code === 'SNAP_NO_REPO' || e.code === 'SNAP_NO_PASSWORD')) return;
      throw e;
    }
    backend = opened.backend;
    await appendLogRecord(backend, record);
  } catch (e) {
    // The record failed as the command did (the server refused these credentials, could not be
    // reached, the command was stopped while it was down): the command's own error said it.
    if (e instanceof SnapError && error instanceof SnapError && e.code === error.code) return;
    ctx.sink.warn?.({
      code: e instanceof SnapError ? e.code : 'SNAP_IO',
      message: `the operation log: could not record this ${ctx.command} in the repository: ${e instanceof Error ? e.message : String(e)}`,
    });
  } finally {
    await backend?.close().catch(() => undefined);
  }
}
