// The `snap` command, loaded by main.ts. The only module that touches process exit codes;
// commands set ctx.exitCode.
import { Command, CommanderError } from 'commander';
import { SnapError } from '../core/errors.js';
import { terminalSafe } from '../core/bytes.js';
import { type Ctx, makeCtx } from './context.js';
import { rawArgv } from './argv.js';
import { EXIT_INTERRUPTED, EXIT_OUTPUT_CLOSED, installInterrupts, type Interrupts, isOutputClosed } from './interrupt.js';
import { versionText, VERSION } from './version.js';
import { registerCommands } from './commands.js';
import { useZstd, ZSTD_KINDS, type ZstdKind, zstdReady } from '../store/zstd.js';
import { recordOperation } from './oplog.js';

/**
 * Exit codes (docs/errors.md): 0 ok, 1 error or damage, 2 usage, 3 finished with warnings, 4 wrong password,
 * 130 interrupted by a signal, 141 standard output closed by its reader.
 */
export const EXIT = { ok: 0, error: 1, usage: 2, partial: 3, wrongPassword: 4, interrupted: EXIT_INTERRUPTED, outputClosed: EXIT_OUTPUT_CLOSED } as const;

function report(e: unknown, debug: boolean): number {
  // The reader of our output went away (`snap ls | head`): stop quietly, as other programs do.
  if (isOutputClosed(e)) return EXIT.outputClosed;
  if (e instanceof SnapError) {
    process.stderr.write(`snap: ${terminalSafe(e.message)} [${e.code}]\n`);
    if (debug && e.stack) process.stderr.write(`${e.stack}\n${e.cause instanceof Error ? `caused by: ${e.cause.stack}\n` : ''}`);
    return e.code === 'SNAP_USAGE' ? EXIT.usage : e.code === 'SNAP_WRONG_PASSWORD' ? EXIT.wrongPassword : e.code === 'SNAP_INTERRUPTED' ? EXIT.interrupted : EXIT.error;
  }
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`snap: internal error: ${terminalSafe(msg)} [SNAP_INTERNAL]${debug ? '' : ' (run with --debug for details)'}\n`);
  if (debug && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  return EXIT.error;
}

/** Commander's own messages ("error: too many arguments ...") in snap's form. */
function usageLine(text: string): string {
  const msg = text.trim().replace(/^error:\s*/, '');
  return `snap: ${msg} [SNAP_USAGE]\n`;
}

/** "interrupted by SIGINT" says which command: "create interrupted by SIGINT". */
function named(e: unknown, ctx: Ctx | undefined): unknown {
  if (!(e instanceof SnapError) || e.code !== 'SNAP_INTERRUPTED' || !ctx || !e.message.startsWith('interrupted by')) return e;
  return new SnapError('SNAP_INTERRUPTED', `${ctx.command} ${e.message}`, { cause: e.cause });
}

async function main(argv: string[], interrupts: Interrupts): Promise<number> {
  let code: number = EXIT.ok;
  // SNAP_ZSTD=zstd-napi|node:zlib|wasm picks the zstd implementation (store/zstd.ts), to compare them.
  const zstdKind = process.env.SNAP_ZSTD;
  if (zstdKind && !(ZSTD_KINDS.includes(zstdKind as ZstdKind) && (await useZstd(zstdKind as ZstdKind)))) {
    return report(new SnapError('SNAP_USAGE', `SNAP_ZSTD=${zstdKind}: not a zstd implementation this installation can load (${ZSTD_KINDS.join(', ')})`), false);
  }
  await zstdReady();
  // The native parts are looked at only when the version is asked for (loading them costs time).
  const wantsVersion = argv.slice(2).some((a) => a === '--version' || a === '-V');
  const program = new Command('snap')
    .description('content-addressed, deduplicating snapshots of your files')
    .version(wantsVersion ? versionText() : VERSION)
    .option('-r, --repo <repo>', 'repository: a folder, s3:https://HOST/BUCKET[/PREFIX], azure:ACCOUNT/CONTAINER[/PREFIX] or sftp:USER@HOST/PATH (default: $SNAP_REPO, else $XDG_DATA_HOME/snap or ~/.local/share/snap)')
    .option('--json', 'print results as JSON')
    .option('-q, --quiet', 'print only warnings, errors and results')
    .option('--append-only', 'never delete or replace anything in the repository (also SNAP_APPEND_ONLY=1): forget, gc, repair and tag refuse')
    .option('--lock-wait <duration>', 'how long to wait for another snap process using the repository (e.g. 30s, 5m)')
    .option('--trust-owner', "open a repository owned by another user (also SNAP_TRUSTED_REPOS=DIR:DIR...); refused by default, as git refuses one")
    .option('--password-file <file>', "an encrypted repository's password: the first line of FILE (also SNAP_PASSWORD, --password-command, or asked on a terminal)")
    .option('--password-command <cmd>', "an encrypted repository's password: what CMD prints (run by /bin/sh)")
    .option('--debug', 'show stack traces of errors')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), outputError: (s, write) => write(usageLine(s)) });

  const run = async (fn: (ctx: Ctx) => Promise<void>, cmd: Command): Promise<void> => {
    let ctx: Ctx | undefined;
    const started = new Date();
    let failure: unknown;
    try {
      ctx = makeCtx(cmd, interrupts);
      await fn(ctx);
      code = ctx.exitCode;
    } catch (e) {
      ctx?.sink.done();
      failure = named(e, ctx);
      code = report(failure, cmd.optsWithGlobals().debug === true);
    }
    // The operation log (docs/automation.md): one record per command that changed the repository.
    if (ctx) await recordOperation(ctx, argv.slice(2), started, code, failure);
  };
  await registerCommands(program, run, argv.slice(2));
  // Every command and subcommand: commander's errors come back here instead of exiting, and are
  // printed in snap's form.
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program)) c.exitOverride().configureOutput(program.configureOutput());

  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return EXIT.ok;
      return EXIT.usage;
    }
    return report(e, argv.includes('--debug'));
  }
  return code;
}

// The single exit path: commands return a code; only a second signal ends the process at once.
const interrupts = installInterrupts((sig) => {
  process.stderr.write(`\nsnap: interrupted by ${sig} again; stopped at once (a lock left behind is removed by the next command) [SNAP_INTERRUPTED]\n`);
  process.exit(EXIT.interrupted);
});
// A promise that failed with nobody waiting for it is a bug in snap (a failure seen twice, one of
// them not awaited): node would end the process with the error's stack trace, the lock left
// behind. Instead it is said in one line, the command is stopped with that failure (it unwinds as
// after a signal: lock released, temporary files removed) and the exit status is an error.
let unawaited = false;
process.on('unhandledRejection', (e) => {
  const msg = e instanceof Error ? e.message : String(e);
  const code = e instanceof SnapError ? `${e.code}, SNAP_INTERNAL` : 'SNAP_INTERNAL';
  process.stderr.write(`snap: internal error: a failure nobody waited for: ${terminalSafe(msg)} [${code}]${process.argv.includes('--debug') ? '' : ' (run with --debug for details)'}\n`);
  if (process.argv.includes('--debug') && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  unawaited = true;
  interrupts.stop(e instanceof SnapError ? e : new SnapError('SNAP_INTERNAL', 'stopped by the internal error above', { cause: e }));
});
// Output still queued when the command finished can fail later: the exit status says so too.
process.on('exit', () => {
  if (interrupts.outputClosed) process.exitCode = EXIT.outputClosed;
  else if (unawaited && (process.exitCode === undefined || process.exitCode === EXIT.ok || process.exitCode === EXIT.partial)) process.exitCode = EXIT.error;
});
main(rawArgv(process.argv), interrupts).then(
  (code) => {
    process.exitCode = code;
    // Interrupted: end now. Output still queued for a reader that stopped reading (a full pipe)
    // would otherwise keep the process alive until a second signal (issue 20).
    if (code === EXIT.interrupted) process.exit(code);
  },
  (e) => {
    process.exitCode = report(e, process.argv.includes('--debug'));
  },
);
