// `--on-success CMD` and `--on-failure CMD` of `create` (docs/automation.md, "Hooks"): after the
// backup ends, one of them runs through /bin/sh with the result in environment variables, so a
// user can send a mail or a desktop notification. A hook never changes snap's exit code: a hook
// that fails, cannot be started or runs too long is a warning (SNAP_HOOK_FAILED), because the
// backup's own result is what a scheduler and a script must see.
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { SnapError } from '../core/errors.js';
import { displayPath } from '../core/bytes.js';
import type { StoredSnapshot } from '../model/snapshot.js';
import type { Ctx } from './context.js';
import { EXIT_INTERRUPTED, EXIT_OUTPUT_CLOSED, isOutputClosed } from './interrupt.js';

export interface HookFlags {
  onSuccess?: string;
  onFailure?: string;
}

/** What a backup ended with, as the hooks see it. */
export interface BackupOutcome {
  snapshot?: StoredSnapshot;
  warnings: number;
}

/** A hook still running after this long is stopped (SIGTERM), with a warning: a hung mailer must not hold the backup's lock-free exit forever. */
export const HOOK_TIMEOUT_MS = 10 * 60_000;

export function hookOptions(cmd: Command): Command {
  return cmd
    .option('--on-success <cmd>', 'run CMD with /bin/sh after a snapshot was saved (also with warnings); the result is in SNAP_* environment variables (docs/automation.md)')
    .option('--on-failure <cmd>', 'run CMD with /bin/sh when no snapshot was saved (an error, or interrupted); SNAP_ERROR_CODE and SNAP_ERROR_MESSAGE say why');
}

/** The exit code main.ts gives an error (docs/errors.md). */
function exitCodeOf(e: unknown): number {
  if (isOutputClosed(e)) return EXIT_OUTPUT_CLOSED;
  if (e instanceof SnapError) return e.code === 'SNAP_USAGE' ? 2 : e.code === 'SNAP_INTERRUPTED' ? EXIT_INTERRUPTED : 1;
  return 1;
}

const resultName = (code: number): string => (code === 0 ? 'ok' : code === 3 ? 'warnings' : code === EXIT_INTERRUPTED ? 'interrupted' : 'failed');

/** The environment a hook gets: the caller's, plus the SNAP_* variables of the result. */
export function hookEnv(ctx: Ctx, exitCode: number, outcome: BackupOutcome | undefined, error: unknown): Record<string, string> {
  const env: Record<string, string> = {
    SNAP_HOOK_RESULT: resultName(exitCode),
    SNAP_EXIT_CODE: String(exitCode),
    SNAP_COMMAND: ctx.command,
    SNAP_HOST: ctx.host.hostname,
    SNAP_WARNINGS: String(outcome?.warnings ?? ctx.sink.warnings.length),
  };
  try {
    env.SNAP_REPOSITORY = ctx.repoPath().path;
  } catch {
    // an unusable --repo: the error variables say so
  }
  const s = outcome?.snapshot;
  if (s) {
    const sum = s.summary;
    Object.assign(env, {
      SNAP_SNAPSHOT_ID: s.id,
      SNAP_SNAPSHOT_SHORT_ID: s.id.slice(0, 8),
      SNAP_SNAPSHOT_TIME: s.time,
      SNAP_PATHS: s.paths.map(displayPath).join('\n'),
      SNAP_FILES: String(sum.totalFiles),
      SNAP_FILES_NEW: String(sum.filesNew),
      SNAP_FILES_CHANGED: String(sum.filesChanged),
      SNAP_FILES_UNCHANGED: String(sum.filesUnchanged),
      SNAP_BYTES: String(sum.totalBytes),
      SNAP_BYTES_READ: String(sum.bytesRead),
      SNAP_BYTES_ADDED: String(sum.dataAdded),
      SNAP_DURATION_MS: String(sum.durationMs),
    });
  }
  if (error !== undefined) {
    env.SNAP_ERROR_CODE = error instanceof SnapError ? error.code : isOutputClosed(error) ? 'EPIPE' : 'SNAP_INTERNAL';
    env.SNAP_ERROR_MESSAGE = error instanceof Error ? error.message : String(error);
  }
  return env;
}

/** Run one hook; resolves when it ended (never rejects: problems are warnings). */
export async function runHook(ctx: Ctx, which: '--on-success' | '--on-failure', command: string, env: Record<string, string>): Promise<void> {
  const warn = (what: string): void => ctx.sink.warn?.({ code: 'SNAP_HOOK_FAILED', message: `the ${which} hook ${what}; the backup's result stands` });
  await new Promise<void>((resolve) => {
    // Its output goes to our stderr: our stdout belongs to the backup's result (and --json).
    const child = spawn('/bin/sh', ['-c', command], { env: { ...process.env, ...env }, stdio: ['ignore', process.stderr, process.stderr] });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
    }, HOOK_TIMEOUT_MS);
    // Ctrl-C while an on-success hook runs stops it too (an on-failure hook after an interrupt runs to its end).
    const stop = (): void => void child.kill('SIGTERM');
    const signal = ctx.signal.aborted ? undefined : ctx.signal;
    signal?.addEventListener('abort', stop, { once: true });
    child.on('error', (e) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', stop);
      warn(`could not be started: ${e.message}`);
      resolve();
    });
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', stop);
      if (timedOut) warn(`ran longer than ${HOOK_TIMEOUT_MS / 60_000} minutes and was stopped`);
      else if (sig) warn(`was killed by ${sig}`);
      else if (code !== 0) warn(`exited with status ${code}`);
      resolve();
    });
  });
}

/**
 * Run `backup`, then the hook its result asks for. The backup's error is rethrown after the
 * on-failure hook, so the exit code and the message are the same with hooks as without.
 */
export async function withHooks(ctx: Ctx, flags: HookFlags, backup: () => Promise<BackupOutcome>): Promise<void> {
  for (const [flag, v] of [['--on-success', flags.onSuccess], ['--on-failure', flags.onFailure]] as const) {
    if (v !== undefined && v.trim() === '') throw new SnapError('SNAP_USAGE', `${flag} needs a command to run, e.g. ${flag} 'notify-send snap "$SNAP_HOOK_RESULT"'`);
  }
  let outcome: BackupOutcome;
  try {
    outcome = await backup();
  } catch (e) {
    ctx.sink.done();
    if (flags.onFailure !== undefined) await runHook(ctx, '--on-failure', flags.onFailure, hookEnv(ctx, exitCodeOf(e), undefined, e));
    throw e;
  }
  if (flags.onSuccess !== undefined) await runHook(ctx, '--on-success', flags.onSuccess, hookEnv(ctx, ctx.exitCode, outcome, undefined));
}
