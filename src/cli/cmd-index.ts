// `snap index rebuild`.
import type { Command } from 'commander';
import { type Ctx, withRepo } from './context.js';

export function registerIndex(program: Command, run: (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>): void {
  const index = program.command('index').description('maintain the local index of the repository');
  index
    .command('rebuild')
    .description('rebuild the index from the packs and snapshot records in the repository')
    .action(async (_o, cmd: Command) =>
      run(
        (ctx) =>
          withRepo(ctx, async (repo) => {
            // From every pack header (never from the index files, which may be what is wrong), then the
            // repository's index files are rewritten from the result (docs/format.md, "Index files").
            const r = await repo.rebuildIndex(ctx.signal, { fromPacks: true });
            const files = await repo.rewriteIndexFiles(() => repo.lock?.assertHeld() ?? Promise.resolve());
            if (ctx.json) ctx.out(JSON.stringify({ ...r, indexFilesWritten: files.written, indexFilesRemoved: files.removed }));
            else ctx.out(`index rebuilt: ${r.packs} packs, ${r.objects} objects, ${r.snapshots} snapshots${r.problems.length ? `, ${r.problems.length} problems (see warnings)` : ''}${files.written + files.removed > 0 ? `; index files: ${files.written} written, ${files.removed} removed` : ''}`);
            if (r.problems.length > 0) ctx.exitCode = 1;
          }, 'exclusive'), // it empties the index that other commands read: none may run meanwhile
        cmd,
      ),
    );
}
