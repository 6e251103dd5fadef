// `snap init`: a new, empty repository (encrypted by default when remote), optionally cutting
// chunks as another repository does.
import type { Command } from 'commander';
import { SnapError } from '../core/errors.js';
import { displayPath } from '../core/bytes.js';
import { Repository } from '../repo/repository.js';
import type { RepoConfig } from '../model/config.js';
import { remoteStorage } from '../repo/storage.js';
import type { Ctx } from './context.js';
import { newKeyScrypt, newPassword } from './password.js';

export function registerInit(program: Command, run: (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>): void {
  program
    .command('init')
    .description('create a new, empty repository')
    .option('--encrypt', 'encrypt it (format 2; the default for remote repositories): the password from SNAP_PASSWORD, --password-file, --password-command, or asked twice on a terminal')
    .option('--no-encryption', 'store a remote repository unencrypted (readable by whoever runs the storage)')
    .option('--copy-chunker-params-from <repo>', "cut chunks as that repository does, so 'snap copy' between them deduplicates fully (plain repositories)")
    .action(async (o: { encrypt?: boolean; encryption?: boolean; copyChunkerParamsFrom?: string }, cmd: Command) =>
      run(async (ctx) => {
        const { path: p, location } = ctx.repoPath();
        if (o.encrypt && o.encryption === false) throw new SnapError('SNAP_USAGE', "--encrypt and --no-encryption contradict each other: give one");
        // Remote repositories are encrypted unless the user says otherwise (docs/remote.md).
        const encrypted = o.encrypt === true || (location.kind !== 'local' && o.encryption !== false);
        if (encrypted && o.copyChunkerParamsFrom !== undefined) {
          throw new SnapError('SNAP_USAGE', "--copy-chunker-params-from makes a plain repository: an encrypted one keeps its chunker's seed secret (give --no-encryption for a remote one)");
        }
        let chunker: RepoConfig['chunker'] | undefined;
        if (o.copyChunkerParamsFrom !== undefined) {
          // An encrypted repository's gear seed is in its keys, not its config: a plain config
          // would publish it (and without it the new repository's config was made unreadable).
          // Refused once its config says so, before a password is asked for nothing.
          const plainOnly = new SnapError(
            'SNAP_USAGE',
            `--copy-chunker-params-from takes a plain repository: ${o.copyChunkerParamsFrom} is encrypted, and its chunker's seed is secret. 'snap copy' into a repository made without this option cuts the files again as that one does (nothing is lost but time)`,
          );
          const other = await ctx.openRepoAt(o.copyChunkerParamsFrom, { lock: 'shared', plainOnly });
          chunker = { ...other.config.chunker };
          await other.close();
        }
        const remote = await remoteStorage(location, process.env, ctx.signal);
        let encrypt: { password: Buffer; scrypt: { N: number; r: number; p: number } } | undefined;
        let repo: Repository;
        try {
          if (encrypted) {
            // Refused before a password is asked for: a password typed for nothing is worse than no prompt.
            if (!(await Repository.isEmptyOrMissing(p, remote))) {
              throw new SnapError('SNAP_REPO_EXISTS', `${displayPath(p)} is not empty; choose an empty or new place for a repository`);
            }
            const g = ctx.opts;
            encrypt = { password: await newPassword({ file: g.passwordFile, command: g.passwordCommand }, ctx.cwd, true), scrypt: newKeyScrypt() };
          }
          const ro = ctx.repoOptions();
          repo = await Repository.init(p, { sink: ctx.sink, clock: ctx.clock, host: ctx.host, remote, indexCache: ro.indexCache, known: ro.known, encrypt }, chunker ? { chunker } : {});
        } catch (e) {
          await remote?.backend.close().catch(() => {});
          throw e;
        } finally {
          encrypt?.password.fill(0);
        }
        if (repo.unlocked) ctx.opened = { repoId: repo.config.id, unlocked: repo.unlocked };
        await repo.close();
        if (ctx.json) ctx.out(JSON.stringify({ repository: p, id: repo.config.id, encrypted: repo.encrypted }));
        else ctx.out(`created ${repo.encrypted ? 'encrypted ' : ''}repository ${repo.config.id.slice(0, 8)} at ${displayPath(p)}`);
        if (repo.encrypted) {
          ctx.sink.info?.(
            "the repository's data can be read only with its password: if it is lost, the backups are lost too (no one can recover them). " +
              "Keep it safe, and consider a second password with 'snap key add'.",
          );
        }
      }, cmd),
    );
}
