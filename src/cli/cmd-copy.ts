// `snap copy --from-repo SOURCE [REF...]`: snapshots of another repository into --repo (all of
// them without REF, else the ones named; --host/--tag/--path narrow either). The work is in
// ops/backup/copy.ts; both repositories are held under a shared lock, so neither's gc runs meanwhile.
// Encrypted repositories: the source's password comes from --from-password-file,
// --from-password-command or SNAP_FROM_PASSWORD, else from the usual sources (one for both);
// copying out of an encrypted repository into a plain one needs --allow-plain.
import type { Command } from 'commander';
import { SnapError, isSnapError } from '../core/errors.js';
import type { Repository } from '../repo/repository.js';
import { displayPath } from '../core/bytes.js';
import { shortId } from '../core/ids.js';
import { copySnapshots } from '../ops/backup/copy.js';
import { filterSnapshots, resolveRef, type SnapshotFilter } from '../ops/tree/refs.js';
import type { StoredSnapshot } from '../model/snapshot.js';
import { type Ctx, withRepo } from './context.js';
import { filterOptions } from './snapshot-args.js';
import { bytes } from './format.js';
import { plural } from './browse-out.js';
import { whenParser } from './when.js';

interface CopyFlags extends SnapshotFilter {
  fromRepo?: string;
  from?: string;
  fromPasswordFile?: string;
  fromPasswordCommand?: string;
  allowPlain?: boolean;
}

export function registerCopy(program: Command, run: (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>): void {
  filterOptions(
    program
      .command('copy')
      .description('copy snapshots from another repository into this one, sending only the objects it lacks (docs/remote.md)')
      .argument('[ref...]', 'snapshots to copy: id prefix, latest or a date (default: all)'),
  )
    .option('--from-repo <repo>', 'the repository to copy from (a folder, s3:..., azure:... or sftp:...)')
    .option('--from <repo>', 'the same as --from-repo')
    .option('--from-password-file <file>', "the source repository's password: the first line of FILE (default: the destination's password sources)")
    .option('--from-password-command <cmd>', "the source repository's password: what CMD prints (or SNAP_FROM_PASSWORD)")
    .option('--allow-plain', 'copy out of an encrypted repository into a plain one (whoever holds the destination can then read the copies)')
    .action(async (refs: string[], o: CopyFlags, cmd: Command) =>
      run(async (ctx) => {
        const from = o.fromRepo ?? o.from;
        if (from === undefined) throw new SnapError('SNAP_USAGE', "copy needs the repository to copy from: 'snap copy --from-repo SOURCE [REF...]'");
        let src: Repository;
        try {
          src = await ctx.openRepoAt(from, { lock: 'shared', from: { file: o.fromPasswordFile, command: o.fromPasswordCommand } });
        } catch (e) {
          // Two repositories, maybe two passwords: say which one this one failed to open.
          if (isSnapError(e, 'SNAP_WRONG_PASSWORD')) throw new SnapError('SNAP_WRONG_PASSWORD', `the source repository ${displayPath(from)}: ${e.message} (its password: --from-password-file, --from-password-command or SNAP_FROM_PASSWORD)`);
          throw e;
        }
        try {
          await withRepo(ctx, async (dst) => {
            if (src.config.id === dst.config.id) throw new SnapError('SNAP_USAGE', `--from-repo ${displayPath(from)} is the repository itself`);
            // Writing an encrypted repository's snapshots into a plain one gives them to whoever
            // holds the destination's storage: said explicitly, never by accident (docs/remote.md).
            if (src.encrypted && !dst.encrypted && o.allowPlain !== true) {
              throw new SnapError(
                'SNAP_USAGE',
                `the source ${displayPath(from)} is encrypted and the destination is not: the copies would be stored readable to whoever holds the destination. Give --allow-plain to copy them anyway, or copy into an encrypted repository ('snap init --encrypt')`,
              );
            }
            const sourceAll = await src.listSnapshots();
            const all = filterSnapshots(sourceAll, o);
            let chosen: StoredSnapshot[];
            if (refs.length === 0) chosen = all;
            else {
              const ids = new Set<string>();
              chosen = [];
              for (const ref of refs) {
                const s = resolveRef(all, ref, src.clock.now(), whenParser);
                if (!ids.has(s.id)) chosen.push(s);
                ids.add(s.id);
              }
            }
            const r = await copySnapshots(src, dst, chosen, { sink: ctx.sink, signal: ctx.signal, sourceSnapshots: sourceAll });
            if (ctx.json) {
              ctx.out(JSON.stringify({ copied: r.copied, skipped: r.skipped, objects_copied: r.objectsCopied, objects_present: r.objectsPresent, bytes_copied: r.bytesCopied, chunks_read: r.chunksRead, reidentified: r.reidentified, rechunked: r.rechunked }));
              return;
            }
            for (const c of r.copied) ctx.out(`copied snapshot ${shortId(c.source)}${c.id === c.source ? '' : ` as ${shortId(c.id)}`}`);
            for (const id of r.skipped) ctx.out(`snapshot ${shortId(id)} is there already`);
            ctx.out(`${plural(r.copied.length, 'snapshot')} copied: ${r.objectsCopied} objects (${bytes(r.bytesCopied)}) sent, ${r.objectsPresent} already there${r.rechunked ? " (files cut again with the destination's chunker)" : r.reidentified ? " (objects re-identified with the destination's keys)" : ''}`);
          }, 'shared');
        } finally {
          await src.close();
        }
      }, cmd),
    );
}
