// `snap export`: a snapshot (or some of its paths) as a .tar, .tar.gz/.tgz or .zip archive.
// A file OUTPUT is written under a temporary name in its directory, fsynced and renamed when
// complete, so an interrupted or failed export never leaves a file that looks whole.
import { rmSync, type Stats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import type { Command } from 'commander';
import { errnoCode, fromSystemError, isSnapError, SnapError } from '../core/errors.js';
import { isOutputClosed, OutputClosed } from './interrupt.js';
import { plural } from './browse-out.js';
import { randomHex, shortId } from '../core/ids.js';
import type { StoredSnapshot } from '../model/snapshot.js';
import { fsPath } from '../core/bytes.js';
import { writeDurable } from '../core/durable.js';
import {
  type ArchiveFormat,
  type ExportResult,
  exportSnapshot,
  formatFromName,
  verifyArchive,
} from '../ops/restore/export.js';
import { PathSelection } from '../ops/tree/selection.js';
import type { Repository } from '../repo/repository.js';
import { type Ctx, readRepo } from './context.js';
import { bytes } from './format.js';
import { collect } from './parse.js';
import { resolveSnapshot } from './snapshot-args.js';

interface ExportFlags {
  path: string[];
  format?: string;
  verify?: boolean;
  force?: boolean;
  host: string[];
  tag: string[];
}

const FORMATS: Record<string, ArchiveFormat> = { tar: 'tar', 'tar.gz': 'tar.gz', tgz: 'tar.gz', zip: 'zip' };
const CHOICES = 'tar, tar.gz (or tgz) or zip';

export function registerExport(program: Command, run: (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>): void {
  program
    .command('export')
    .description('write a snapshot, or some of its paths, as a .tar, .tar.gz/.tgz or .zip archive')
    .argument('<ref>', "snapshot: id prefix, 'latest' or a date")
    .argument('<output>', "archive to write, or '-' for standard output (then --format is required)")
    .option('--path <path>', 'export only this snapshot path, with its parent directories (repeatable; relative: inside the source paths)', collect, [])
    .option('--format <format>', `archive format: ${CHOICES} (default: from the OUTPUT name)`)
    .option('--verify', 'read the archive back and check every entry against the snapshot')
    .option('--force', 'replace OUTPUT if it exists')
    .option('--host <host>', 'resolve REF among snapshots from this host (repeatable)', collect, [])
    .option('--tag <tag>', 'resolve REF among snapshots with this tag (repeatable: all must match)', collect, [])
    .action(async (ref: string, output: string, o: ExportFlags, cmd: Command) => run((ctx) => exportCmd(ctx, ref, output, o), cmd));
}

function chooseFormat(output: string, flag: string | undefined): ArchiveFormat {
  if (flag !== undefined) {
    const f = FORMATS[flag.toLowerCase()];
    if (!f) throw new SnapError('SNAP_USAGE', `unknown archive format '${flag}': choose ${CHOICES}`);
    return f;
  }
  if (output === '-') throw new SnapError('SNAP_USAGE', `writing to standard output needs --format (${CHOICES})`);
  const f = formatFromName(output);
  if (!f) throw new SnapError('SNAP_USAGE', `cannot tell the archive format from '${output}': name it .tar, .tar.gz, .tgz or .zip, or pass --format (${CHOICES})`);
  return f;
}

async function exportCmd(ctx: Ctx, ref: string, output: string, o: ExportFlags): Promise<void> {
  const format = chooseFormat(output, o.format);
  const toStdout = output === '-';
  if (toStdout && o.verify) throw new SnapError('SNAP_USAGE', '--verify needs an OUTPUT file: an archive written to standard output cannot be read back');
  if (toStdout && process.stdout.isTTY) throw new SnapError('SNAP_USAGE', 'refusing to write an archive to a terminal (redirect standard output, or give an OUTPUT file)');
  const dest = toStdout ? undefined : path.resolve(output);
  const existing = dest ? await lstatOrUndefined(dest) : undefined;
  if (existing?.isDirectory()) throw new SnapError('SNAP_USAGE', `${output} is a directory: give the archive's file name`);
  if (existing && !o.force) throw new SnapError('SNAP_EXISTS', `${output} already exists (use --force to replace it)`);

  await readRepo(ctx, async (repo) => {
    const snap = await resolveSnapshot(ctx, repo, ref, { host: o.host, tag: o.tag });
    const selection = await PathSelection.resolve(repo, snap, o.path);
    const run = { repo, snap, selection, format, ctx };
    const { result, size } = dest ? await toFile(run, dest, output, o.force === true) : await toStream(run);
    ctx.sink.done();
    report(ctx, { snap, output, format, result, size, toStdout });
    if (!o.verify || !dest) return;
    try {
      const v = await verifyArchive(repo, snap, dest, { format, selection, sink: ctx.sink, name: output });
      ctx.sink.done();
      if (ctx.json) ctx.out(JSON.stringify({ verified: true, output, entries: v.entries, bytes: v.bytes }));
      else ctx.out(`verified ${output}: ${plural(v.entries, 'entry', 'entries')} and ${bytes(v.bytes)} of file data match the snapshot`);
    } catch (e) {
      ctx.sink.done();
      if (e instanceof SnapError && e.code === 'SNAP_CORRUPT') {
        throw new SnapError('SNAP_CORRUPT', `${e.message}; the archive was left at ${output}, but do not rely on it`, { cause: e });
      }
      throw e;
    }
  });
}

interface Run {
  repo: Repository;
  snap: StoredSnapshot;
  selection: PathSelection;
  format: ArchiveFormat;
  ctx: Ctx;
}

async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await fsp.lstat(p);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw fromSystemError(e, `checking ${p}`);
  }
}

/**
 * A durable write (core/durable.ts: temp file, fsync, then rename, or link, which refuses to
 * replace, into place, folder fsync); the temp file is removed on any failure or signal.
 */
async function toFile(r: Run, dest: string, output: string, force: boolean): Promise<{ result: ExportResult; size: number }> {
  const dir = path.dirname(dest);
  const tmp = path.join(dir, `.${path.basename(dest)}.snap-tmp-${randomHex(6)}`);
  const mode = await archiveMode(r.repo.localRoot);
  // Ctrl-C (interrupt.ts): the stream is destroyed, which fails the writer's pending write; a
  // second signal ends the process at once, after removing the temp file.
  const signal = r.ctx.signal;
  const dropForced = r.ctx.interrupts.onForcedExit(() => rmSync(tmp, { force: true }));
  let out: { result: ExportResult; size: number } | undefined;
  let stage = `creating ${output}`;
  // The writer's own failure (ENOSPC): the exporter may see only that its output went away (zip's
  // deflate stream fails with an AbortError, "The operation was aborted").
  let written: { errored: Error | null } | undefined;
  try {
    // Without --force, link(2) puts the file in place only if OUTPUT still does not exist (another
    // process may have created it since the check); file systems without hard links fall back to
    // a check and rename.
    const placed = await writeDurable({ dir, tmp, dest, mode, publish: force ? 'replace' : 'create', linkFallback: true }, async (fh) => {
      stage = `writing ${output}`;
      const stream = fh.createWriteStream({ autoClose: false });
      written = stream;
      const onAbort = (): void => void stream.destroy(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
      signal.addEventListener('abort', onAbort, { once: true });
      // The stream holds a reference on the handle until destroyed (autoClose: false keeps the fd
      // open for the fsync); it is destroyed after the fsync, else close() would wait forever.
      const release = (): void => {
        signal.removeEventListener('abort', onAbort);
        stream.destroy();
      };
      try {
        const result = await exportSnapshot(r.repo, r.snap, stream, { format: r.format, selection: r.selection, sink: r.ctx.sink });
        signal.throwIfAborted();
        out = { result, size: (await fh.stat()).size };
      } catch (e) {
        release();
        throw e;
      }
      stage = `moving the finished archive to ${output}`;
      return release;
    });
    if (!placed) throw new SnapError('SNAP_EXISTS', `${output} appeared while exporting; not replaced (use --force)`);
    return out!;
  } catch (e) {
    const why = signal.reason as unknown;
    if (isSnapError(why, 'SNAP_INTERRUPTED')) throw new SnapError('SNAP_INTERRUPTED', `export ${why.message}; ${output} was not written`);
    const failed = written?.errored && errnoCode(written.errored) !== undefined && !(e instanceof SnapError) ? written.errored : e;
    throw errnoCode(failed) && !(failed instanceof SnapError) ? fromSystemError(failed, stage) : failed;
  } finally {
    dropForced();
  }
}

/**
 * An archive holds what the repository holds: it is created no more open than the repository's
 * folder (an owner-only repository gives a 0600 archive, whatever the umask; issue 20).
 */
async function archiveMode(repoRoot: string | undefined): Promise<number> {
  const st = repoRoot === undefined ? undefined : await fsp.stat(fsPath(repoRoot)).catch(() => undefined);
  return st ? st.mode & 0o666 & ((st.mode & 0o777) | 0o600) : 0o600;
}

async function toStream(r: Run): Promise<{ result: ExportResult; size: number }> {
  const out = new CountingStdout(process.stdout);
  const signal = r.ctx.signal;
  const onAbort = (): void => void out.destroy(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const result = await exportSnapshot(r.repo, r.snap, out, { format: r.format, selection: r.selection, sink: r.ctx.sink });
    signal.throwIfAborted();
    return { result, size: out.bytes };
  } catch (e) {
    // A reader that went away (`| head`) stops the export quietly, like any command (interrupt.ts).
    if (isOutputClosed(e)) throw new OutputClosed();
    if (signal.aborted) throw signal.reason;
    throw errnoCode(e) && !(e instanceof SnapError) ? fromSystemError(e, 'writing the archive to standard output') : e;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/**
 * Counts the archive's bytes on their way to stdout. Ending it never ends stdout (Node keeps
 * stdio open); it only waits until stdout took everything. A stdout error (EPIPE) fails it.
 */
class CountingStdout extends Writable {
  bytes = 0;

  constructor(private readonly target: NodeJS.WriteStream) {
    super();
    target.on('error', (e) => this.destroy(e));
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.bytes += chunk.length;
    if (this.target.write(chunk)) cb();
    else this.target.once('drain', () => cb());
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (this.target.writableNeedDrain) this.target.once('drain', () => cb());
    else cb();
  }
}

function report(
  ctx: Ctx,
  x: { snap: StoredSnapshot; output: string; format: ArchiveFormat; result: ExportResult; size: number; toStdout: boolean },
): void {
  const r = x.result;
  // With '-' the archive is on stdout: the summary goes to stderr.
  const say = x.toStdout ? (s: string) => process.stderr.write(s + '\n') : ctx.out;
  if (ctx.json) {
    say(
      JSON.stringify({
        snapshot: x.snap.id,
        output: x.output,
        format: x.format,
        entries: r.entries,
        files: r.files,
        dirs: r.dirs,
        symlinks: r.symlinks,
        hardlinks: r.hardlinks,
        special: r.special,
        sockets_skipped: r.sockets,
        bytes: r.bytes,
        archive_bytes: x.size,
      }),
    );
    return;
  }
  if (ctx.opts.quiet && x.toStdout) return;
  const where = x.toStdout ? 'standard output' : x.output;
  say(
    `exported snapshot ${shortId(x.snap.id)} to ${where} (${x.format}): ${plural(r.entries, 'entry', 'entries')} (${plural(r.files, 'file')}, ` +
      `${plural(r.dirs, 'dir')}, ${plural(r.symlinks, 'symlink')}, ${plural(r.hardlinks, 'hard link')}, ${r.special} other), ` +
      `${bytes(r.bytes)} of file data, archive ${bytes(x.size)}`,
  );
  if (r.sockets > 0) say(`  ${plural(r.sockets, 'socket')} skipped (archives cannot hold sockets)`);
}
