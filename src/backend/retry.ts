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
  /** How to wait (a test may count or shorten waits). */
  sleep: (ms: number) => Promise<void>;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 10,
  baseDelayMs: 250,
  maxDelayMs: 20_000,
  random: Math.random,
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
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
      if (attempt >= p.attempts) throw exhausted(e, attempt, Date.now() - start);
      await p.sleep(backoffDelay(p, attempt));
    }
  }
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
