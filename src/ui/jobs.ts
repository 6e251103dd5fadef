// Long work started from the page (a restore) runs as a job: the request that starts it answers
// at once with the job's id; the page polls its progress and may cancel it. Finished jobs are kept
// for a while so the page can read their result, then dropped.
import { randomBytes } from 'node:crypto';
import type { ProgressCounters, ProgressSink, Warning } from '../core/progress.js';

export type JobState = 'running' | 'done' | 'failed' | 'cancelled';

export interface Job {
  id: string;
  kind: string;
  state: JobState;
  started: string;
  progress: ProgressCounters;
  warnings: Warning[];
  result?: unknown;
  error?: { code: string; message: string };
}

/** Finished jobs kept for the page to read. */
const KEEP_MS = 10 * 60_000;
/** Warnings kept per job (the rest are only counted, so a job's memory stays bounded). */
const MAX_WARNINGS = 200;

export class Jobs {
  private readonly jobs = new Map<string, { job: Job; ac: AbortController; warningCount: number }>();

  constructor(private readonly stopAll: AbortSignal) {}

  start(kind: string, run: (sink: ProgressSink, signal: AbortSignal) => Promise<unknown>): Job {
    const ac = new AbortController();
    const onStop = (): void => ac.abort(this.stopAll.reason);
    this.stopAll.addEventListener('abort', onStop, { once: true });
    const job: Job = { id: randomBytes(9).toString('base64url'), kind, state: 'running', started: new Date().toISOString(), progress: { files: 0, dirs: 0, bytes: 0 }, warnings: [] };
    const entry = { job, ac, warningCount: 0 };
    this.jobs.set(job.id, entry);
    const sink: ProgressSink = {
      progress: (c) => (job.progress = { ...c }),
      warn: (w) => {
        if (++entry.warningCount <= MAX_WARNINGS) job.warnings.push(w);
      },
    };
    void run(sink, ac.signal).then(
      (result) => {
        job.state = 'done';
        job.result = result;
      },
      (e: unknown) => {
        job.state = ac.signal.aborted ? 'cancelled' : 'failed';
        const code = (e as { code?: unknown }).code;
        job.error = { code: typeof code === 'string' && code.startsWith('SNAP_') ? code : 'SNAP_INTERNAL', message: e instanceof Error ? e.message : String(e) };
      },
    ).finally(() => {
      this.stopAll.removeEventListener('abort', onStop);
      setTimeout(() => this.jobs.delete(job.id), KEEP_MS).unref();
    });
    return job;
  }

  get(id: string): (Job & { warning_count: number }) | undefined {
    const e = this.jobs.get(id);
    return e ? { ...e.job, warning_count: e.warningCount } : undefined;
  }

  cancel(id: string): boolean {
    const e = this.jobs.get(id);
    if (!e) return false;
    if (e.job.state === 'running') e.ac.abort(new Error('cancelled from the page'));
    return true;
  }

  /** Resolves when no job is running (server shutdown waits for cancelled jobs to unwind). */
  async idle(): Promise<void> {
    while ([...this.jobs.values()].some((e) => e.job.state === 'running')) await new Promise((r) => setTimeout(r, 50));
  }
}
