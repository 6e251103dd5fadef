// `snap copy --from-repo SOURCE [REF...]`: snapshots of another repository into --repo (all of
// them without REF, else the ones named; --host/--tag/--path narrow either). The work is in
// ops/copy.ts; both repositories are held under a shared lock, so neither's gc runs meanwhile.
import type { Command } from 'commander';
import { SnapError } from '../core/errors.js';
import { displayPath } from '../core/bytes.js';
import { shortId } from '../core/ids.js';
import { copySnapshots } from '../ops/copy.js';
import { filterSnapshots, resolveRef, type SnapshotFilter } from '../ops/refs.js';
import type { StoredSnapshot } from '../model/snapshot.js';
import { type Ctx, withRepo } from './context.js';
import { filterOptions } from './cmd-list.js';
import { bytes } from './format.js';
import { plural } from './browse-out.js';
import { cliNow } from './now.js';
import { whenParser } from './when.js';

interface CopyFlags extends SnapshotFilter {
  fromRepo?: string;
  from?: string;
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
    .action(async (refs: string[], o: CopyFlags, cmd: Command) =>
      run(async (ctx) => {
        const from = o.fromRepo ?? o.from;
        if (from === undefined) throw new SnapError('SNAP_USAGE', "copy needs the repository to copy from: 'snap copy --from-repo SOURCE [REF...]'");
        const src = await ctx.openRepoAt(from, { lock: 'shared' });
        try {
          await withRepo(ctx, async (dst) => {
            if (src.config.id === dst.config.id) throw new SnapError('SNAP_USAGE', `--from-repo ${displayPath(from)} is the repository itself`);
            // Object ids of an encrypted repository are keyed by its own secret (docs/format.md,
            // "Format 2"): copying into or out of one means re-identifying every object and
            // rewriting every tree, which snap copy does not do yet. Refused before anything is read.
            if (src.encrypted || dst.encrypted) {
              throw new SnapError(
                'SNAP_USAGE',
                `snap copy works between plain repositories only for now: ${src.encrypted ? `the source ${displayPath(from)}` : 'the destination'} is encrypted, and its object ids are keyed by its own secret. ` +
                  'To keep an encrypted off-site copy, back up into the encrypted repository directly (docs/remote.md, "3-2-1")',
              );
            }
            const all = filterSnapshots(await src.listSnapshots(), o);
            let chosen: StoredSnapshot[];
            if (refs.length === 0) chosen = all;
            else {
              const ids = new Set<string>();
              chosen = [];
              for (const ref of refs) {
                const s = resolveRef(all, ref, cliNow(src.clock), whenParser);
                if (!ids.has(s.id)) chosen.push(s);
                ids.add(s.id);
              }
            }
            const r = await copySnapshots(src, dst, chosen, { sink: ctx.sink, signal: ctx.signal });
            if (ctx.json) {
              ctx.out(JSON.stringify({ copied: r.copied, skipped: r.skipped, objects_copied: r.objectsCopied, objects_present: r.objectsPresent, bytes_copied: r.bytesCopied }));
              return;
            }
            for (const c of r.copied) ctx.out(`copied snapshot ${shortId(c.source)}${c.id === c.source ? '' : ` as ${shortId(c.id)}`}`);
            for (const id of r.skipped) ctx.out(`snapshot ${shortId(id)} is there already`);
            ctx.out(`${plural(r.copied.length, 'snapshot')} copied: ${r.objectsCopied} objects (${bytes(r.bytesCopied)}) sent, ${r.objectsPresent} already there`);
          }, 'shared');
        } finally {
          await src.close();
        }
      }, cmd),
    );
}
