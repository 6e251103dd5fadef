// Stopping a command early, the same way for every command: Ctrl-C (SIGINT), SIGTERM, or a
// standard output whose reader went away (`snap ls | head`). Each aborts one AbortSignal, which
// the CLI passes to ops as `signal` in their options; ops check it between steps and throw its
// reason. The command then unwinds through its finally blocks (temporary files removed, the
// repository lock released, the index closed) and main exits once: 130 after a signal, 141 (as a
// program killed by SIGPIPE) without a word after a closed output. A second signal stops at once,
// after the synchronous cleanups registered with onForcedExit.
import { terminalSafe } from '../core/bytes.js';
import { errnoCode, OutputClosed, SnapError } from '../core/errors.js';
import { takeEarlySignals } from './early-signals.js';

export { isOutputClosed, OutputClosed } from '../core/errors.js';


/** Exit codes of a stopped command (docs/errors.md). */
export const EXIT_INTERRUPTED = 130;
export const EXIT_OUTPUT_CLOSED = 141;


export interface Interrupts {
  readonly signal: AbortSignal;
  /** Standard output's reader went away (perhaps only after the command finished, its last write still queued). */
  readonly outputClosed: boolean;
  /** A synchronous cleanup (remove a temporary file) run if a second signal stops the process at once. */
  onForcedExit(fn: () => void): () => void;
  /** Stop the command as a signal does, with this reason (a failure found outside it). */
  stop(reason: unknown): void;
  dispose(): void;
}

/** The installed signal: output written through writeOut stops once it is aborted. */
let installed: AbortSignal | undefined;

/** `forceExit` is main's exit for a second signal: it prints one line and ends the process. */
export function installInterrupts(forceExit: (sig: NodeJS.Signals) => void): Interrupts {
  const ac = new AbortController();
  installed = ac.signal;
  const cleanups = new Set<() => void>();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (!ac.signal.aborted) {
      ac.abort(new SnapError('SNAP_INTERRUPTED', `interrupted by ${sig}`));
      return;
    }
    for (const fn of cleanups) {
      try {
        fn();
      } catch {
        // best effort: the process is about to end
      }
    }
    forceExit(sig);
  };
  let outputClosed = false;
  const onStdoutError = (e: Error): void => {
    if (errnoCode(e) === 'EPIPE') outputClosed = true;
    if (!ac.signal.aborted) ac.abort(errnoCode(e) === 'EPIPE' ? new OutputClosed() : new SnapError('SNAP_IO', `writing to standard output: ${e.message}`, { cause: e }));
  };
  // A closed stderr must not crash the process either; there is nowhere left to report it.
  const ignore = (): void => {};
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Those that came while the CLI loaded (main.ts): the command stops before it starts (a
  // second one stops the process at once, as it would have later).
  for (const sig of takeEarlySignals()) onSignal(sig);
  process.stdout.on('error', onStdoutError);
  process.stderr.on('error', ignore);
  return {
    signal: ac.signal,
    get outputClosed() {
      return outputClosed;
    },
    onForcedExit(fn) {
      cleanups.add(fn);
      return () => cleanups.delete(fn);
    },
    stop(reason) {
      if (!ac.signal.aborted) ac.abort(reason);
    },
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/**
 * Write to standard output; throws OutputClosed once its reader is gone (the failed write sets
 * `errored` at once, the 'error' event comes later) and the abort reason once the command is stopped.
 */
export function writeOut(data: string | Uint8Array, signal: AbortSignal | undefined = installed): boolean {
  signal?.throwIfAborted();
  const ok = process.stdout.write(typeof data === 'string' ? terminalSafe(data) : data);
  checkOut();
  return ok;
}

/** Like writeOut, and waits while the pipe is full, so long output streams with bounded memory. */
export async function writeOutAsync(data: string | Uint8Array, signal: AbortSignal | undefined = installed): Promise<void> {
  if (writeOut(data, signal)) return;
  // Writers that find the pipe full together (a dry run's entries, planned concurrently) share one
  // wait: one set of listeners however many wait, never Node's "possible memory leak" warning.
  if (!fullPipe || fullPipe.signal !== signal) {
    const wait = { signal, drained: drainOrError(signal) };
    fullPipe = wait;
    void wait.drained.then(
      () => fullPipe === wait && (fullPipe = undefined),
      () => fullPipe === wait && (fullPipe = undefined),
    );
  }
  await fullPipe.drained;
  checkOut();
}

let fullPipe: { signal: AbortSignal | undefined; drained: Promise<void> } | undefined;

function drainOrError(signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (e?: unknown): void => {
      process.stdout.off('drain', onDrain);
      process.stdout.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
      if (e === undefined) resolve();
      else reject(e);
    };
    const onDrain = (): void => done();
    const onError = (e: Error): void => done(errnoCode(e) === 'EPIPE' ? new OutputClosed() : e);
    const onAbort = (): void => done(signal!.reason);
    process.stdout.once('drain', onDrain);
    process.stdout.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function checkOut(): void {
  const e = process.stdout.errored;
  if (!e) return;
  if (errnoCode(e) === 'EPIPE') throw new OutputClosed();
  throw new SnapError('SNAP_IO', `writing to standard output: ${e.message}`, { cause: e });
}
