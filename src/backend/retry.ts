// Retrying transient failures of a remote store: exponential backoff with full jitter (each
// wait is uniform in [0, min(maxDelayMs, baseDelayMs * 2^attempt)]), so many clients that failed
// together do not retry together. Bounded by attempts; the defaults ride out a gateway restart
// or a minute of throttling. Tests pass small delays and a seeded `random`.
export interface RetryPolicy {
  /** Tries in all, the first included (1 = no retry). */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A number in [0, 1): Math.random, or a seeded generator in tests. */
  random: () => number;
  /** How to wait (a test may count or shorten waits); a wait ends early, rejecting, once `signal` is aborted. */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /**
   * The command's stop (Ctrl-C, SIGTERM, a closed output). Once it is aborted nothing is retried
   * and no wait goes on: a failure worth another try throws the stop's reason instead (a cleanup
   * after the stop, such as releasing the lock, still gets its one try), so a stopped command ends
   * at once when the server is down, not after a minute of retries per operation. The backends
   * also end their requests in flight when it is aborted, and give each request made after it
   * STOPPED_REQUEST_MS instead of their usual idle timeout, so a server that hangs (connections
   * open, nothing answering) cannot hold a stopped command either.
   */
  stop?: AbortSignal;
}

/**
 * How long a request made after the command's stop (a cleanup: the index file of the last packs,
 * the lock's release, the operation log's record) may take in all before it is given up, instead
 * of the usual idle timeout (S3: 60 s; SFTP: ssh's keepalive, about a minute): a stopped command
 * ends within a few seconds even when its server hangs. A healthy server answers each in
 * milliseconds; a lock left behind is removed by the next command on the same machine.
 */
export const STOPPED_REQUEST_MS = 3000;

/** Why a request made after the stop was given up, STOPPED_REQUEST_MS without its answer. */
export const STOPPED_NO_ANSWER = `no answer within ${STOPPED_REQUEST_MS / 1000} s of a stopped command`;
/** Why the requests in flight at the stop were ended. */
export const STOPPED_IN_FLIGHT = 'the command was stopped';

/**
 * A backend's requests in flight, ended (`end`) when the command's stop comes (RetryPolicy.stop):
 * one listener per backend, not one per request. close() takes the listener off.
 */
export class InFlight<T> {
  private readonly items = new Set<T>();
  private readonly onStop = (): void => {
    for (const t of this.items) this.end(t);
    this.items.clear();
  };

  constructor(
    private readonly stop: AbortSignal | undefined,
    private readonly end: (t: T) => void,
  ) {
    stop?.addEventListener('abort', this.onStop, { once: true });
  }

  add(t: T): void {
    this.items.add(t);
  }

  delete(t: T): void {
    this.items.delete(t);
  }

  close(): void {
    this.stop?.removeEventListener('abort', this.onStop);
  }
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 10,
  baseDelayMs: 250,
  maxDelayMs: 20_000,
  random: Math.random,
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal!.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

export function retryPolicy(o: Partial<RetryPolicy> = {}): RetryPolicy {
  const p = { ...DEFAULT_RETRY, ...o };
  if (!Number.isInteger(p.attempts) || p.attempts < 1) throw new RangeError(`retry attempts must be a positive integer, not ${p.attempts}`);
  return p;
}

/** The wait before try number `attempt + 1` (attempt counts from 1). */
export function backoffDelay(p: RetryPolicy, attempt: number): number {
  const cap = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(p.random() * cap);
}

/** A failure worth another try (the server or the network may be fine again soon). */
export class TransientError extends Error {
  constructor(message: string, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = 'TransientError';
  }
}

/**
 * Run `fn` until it succeeds, throws something other than a TransientError, or the attempts
 * are used up; then `exhausted` turns the last failure into the error to report.
 */
export async function withRetry<T>(p: RetryPolicy, fn: (attempt: number) => Promise<T>, exhausted: (last: TransientError, attempts: number, elapsedMs: number) => Error): Promise<T> {
  const start = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (!(e instanceof TransientError)) throw e;
      if (p.stop?.aborted) throw p.stop.reason;
      if (attempt >= p.attempts) throw exhausted(e, attempt, Date.now() - start);
      await pause(p, backoffDelay(p, attempt));
    }
  }
}

/** The wait between tries: `p.sleep`, ended by `p.stop` (even a test's sleep that ignores the signal). */
export function pause(p: RetryPolicy, ms: number): Promise<void> {
  const stop = p.stop;
  if (!stop) return p.sleep(ms);
  if (stop.aborted) return Promise.reject(stop.reason);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(stop.reason);
    stop.addEventListener('abort', onAbort, { once: true });
    p.sleep(ms, stop).then(
      () => {
        stop.removeEventListener('abort', onAbort);
        resolve();
      },
      (e: unknown) => {
        stop.removeEventListener('abort', onAbort);
        reject(stop.aborted ? stop.reason : e);
      },
    );
  });
}

/** System error codes of network failures, in words for messages (the code is shown too). */
export const NETWORK_WORDS: Record<string, string> = {
  ECONNRESET: 'connection reset',
  ECONNREFUSED: 'connection refused',
  EPIPE: 'connection closed while sending',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EAI_AGAIN: 'name lookup failed for now',
  ECONNABORTED: 'connection aborted',
  ERR_STREAM_PREMATURE_CLOSE: 'the connection closed early',
};
