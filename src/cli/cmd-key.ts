// `snap key list | add | remove | passwd`: the passwords of an encrypted repository (repo/keys.ts).
// Each password is a key file holding the master keys; the data never changes.
import type { Command } from 'commander';
import { SnapError } from '../core/errors.js';
import type { Repository } from '../repo/repository.js';
import { addKey, keyName, listKeys, removeKey, resolveKeyId } from '../repo/keys.js';
import { type Ctx, withRepo } from './context.js';
import { newKeyScrypt, newPassword } from './password.js';

interface NewPasswordFlags {
  newPasswordFile?: string;
  newPasswordCommand?: string;
}

function encryptedOnly(repo: Repository): NonNullable<Repository['unlocked']> {
  if (!repo.unlocked) throw new SnapError('SNAP_USAGE', 'the repository is not encrypted: it has no keys (docs/security.md says how to move to an encrypted one)');
  return repo.unlocked;
}

async function addFor(ctx: Ctx, repo: Repository, o: NewPasswordFlags): Promise<string> {
  const unlocked = encryptedOnly(repo);
  const pw = await newPassword({ file: o.newPasswordFile, command: o.newPasswordCommand }, ctx.cwd, false);
  try {
    // The new key file vouches for the config the repository was opened with (docs/format.md,
    // "Authenticated config"): so is a repository of before that rule upgraded.
    return await addKey(repo.backend, repo.config.id, unlocked.master, pw, { now: repo.clock.now(), scrypt: newKeyScrypt(), config: unlocked.config });
  } finally {
    pw.fill(0);
  }
}

const newPasswordOptions = (c: Command): Command =>
  c
    .option('--new-password-file <file>', 'the new password: the first line of FILE (also SNAP_NEW_PASSWORD, or asked twice on a terminal)')
    .option('--new-password-command <cmd>', 'the new password: what CMD prints (run by /bin/sh)');

export function registerKey(program: Command, run: (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>): void {
  const key = program.command('key').description('the passwords of an encrypted repository');

  key
    .command('list')
    .description('list the keys (one per password); * marks the one the given password opens')
    .action(async (_o, cmd: Command) =>
      run(
        (ctx) =>
          withRepo(ctx, async (repo) => {
            const current = encryptedOnly(repo).keyId;
            const keys = await listKeys(repo.backend);
            if (ctx.json) {
              ctx.out(JSON.stringify(keys.map((k) => ({ ...k, current: k.id === current })), null, 2));
              return;
            }
            for (const k of keys) {
              const mark = k.id === current ? '*' : ' ';
              if ('damage' in k) ctx.out(`${mark} ${k.id}  damaged: ${k.damage}`);
              else ctx.out(`${mark} ${k.id}  ${k.created}  scrypt N=${k.kdf.N} r=${k.kdf.r} p=${k.kdf.p}`);
            }
          }),
        cmd,
      ),
    );

  newPasswordOptions(key.command('add').description('add a password: a new key file holding the same master keys')).action(
    async (o: NewPasswordFlags, cmd: Command) =>
      run(
        (ctx) =>
          withRepo(ctx, async (repo) => {
            const id = await addFor(ctx, repo, o);
            ctx.out(ctx.json ? JSON.stringify({ added: id }) : `added key ${id}`);
          }),
        cmd,
      ),
  );

  key
    .command('remove')
    .description('remove a key (its password no longer opens the repository); the last key and the one in use are refused')
    .argument('<id>', 'the key id, or a unique prefix of 4 digits or more')
    .action(async (ref: string, _o, cmd: Command) =>
      run(
        (ctx) =>
          withRepo(ctx, async (repo) => {
            const current = encryptedOnly(repo).keyId;
            const id = await resolveKeyId(repo.backend, ref);
            await removeKey(repo.backend, id, current);
            ctx.out(ctx.json ? JSON.stringify({ removed: id }) : `removed key ${id}`);
          }),
        cmd,
      ),
    );

  newPasswordOptions(key.command('passwd').description('change the password: a new key file replaces the one the current password opens')).action(
    async (o: NewPasswordFlags, cmd: Command) =>
      run(
        (ctx) =>
          withRepo(ctx, async (repo) => {
            const old = encryptedOnly(repo).keyId;
            // The new key is durable before the old one goes: a crash leaves both passwords working.
            const id = await addFor(ctx, repo, o);
            await repo.backend.delete(keyName(old));
            ctx.out(ctx.json ? JSON.stringify({ added: id, removed: old }) : `changed the password: key ${old} replaced by ${id}`);
          }),
        cmd,
      ),
  );
}
