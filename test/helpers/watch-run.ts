// A running `snap --json watch` in a test: its events as they come, waits on them, and the
// cleanup that kills whatever a test left running (test/watch*.test.ts).
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'vitest';
import { snap, snapAsync } from './cli.js';

export interface WatchEvent {
  event: string;
  reason?: string;
  id?: string;
  scan?: string;
  lstat_calls?: number;
  readdir_calls?: number;
  trusted_dirs?: number;
  files?: number;
  bytes?: number;
  [k: string]: unknown;
}

export interface Running {
  child: ChildProcess;
  events: WatchEvent[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running: Running[] = [];

/** Start `snap --repo REPO --json watch ARGS…` with `env` added. */
export function startWatch(repo: string, args: string[], env: Record<string, string> = {}): Running {
  return adopt(snapAsync(['--repo', repo, '--json', 'watch', ...args], { env }));
}

/** Follow a running `snap --json watch`: its events as they come. */
export function adopt(child: ChildProcess): Running {
  const events: WatchEvent[] = [];
  let buf = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim() !== '') events.push(JSON.parse(line) as WatchEvent);
    }
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const r = { child, events, stderr: () => err, exited };
  running.push(r);
  return r;
}

/** For afterEach: kill every watcher a test left running and wait for it. */
export async function killWatchers(): Promise<void> {
  for (const r of running.splice(0)) {
    if (r.child.exitCode === null && r.child.signalCode === null) {
      r.child.kill('SIGKILL');
      await r.exited;
    }
  }
}

/** Poll `fn` until it gives a value; on timeout, fail with the watcher's events and stderr. */
export async function waitFor<T>(what: string, fn: () => T | undefined | false, r: Running, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(r.events)}; stderr: ${r.stderr()}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

export const snapshots = (r: Running): WatchEvent[] => r.events.filter((e) => e.event === 'snapshot');

/** Wait for the n-th snapshot event (1-based) and return it. */
export const nth = (r: Running, n: number, ms?: number): Promise<WatchEvent> => waitFor(`snapshot #${n}`, () => snapshots(r)[n - 1], r, ms);

export const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

/** Every path of snapshot `id` under the source `src`, relative, sorted. */
export function snapshotPaths(repo: string, id: string, src: string): string[] {
  const r = snap(['--repo', repo, '--json', 'ls', '-R', id, src]);
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as { entries: { path: string }[] };
  return out.entries.map((e) => path.relative(src, e.path)).filter((p) => p !== '').sort();
}

/** A file's contents in snapshot `id`. */
export function catFile(repo: string, id: string, file: string): string {
  const r = snap(['--repo', repo, 'cat', id, file]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

/** Tell the watcher's test hook (SNAP_WATCH_TEST_CONTROL) what to do and give it time to act: pause, resume, overflow, hold, release. */
export async function hook(r: Running, control: string, what: string): Promise<void> {
  fs.writeFileSync(control, what);
  r.child.kill('SIGUSR2');
  await sleep(300);
}

/** Every path under `dir`, relative, sorted. */
export function onDisk(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

/** Files and bytes on disk under `dir`. */
export function totals(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const p of onDisk(dir)) {
    const st = fs.lstatSync(path.join(dir, p));
    if (st.isFile()) {
      files++;
      bytes += st.size;
    }
  }
  return { files, bytes };
}

/** A big tree nobody touches: `folders` folders of 5 subfolders of 10 files (40: 2,000 files, 241 folders). */
export function bigTree(src: string, folders = 40): void {
  for (let i = 0; i < folders; i++) {
    for (let j = 0; j < 5; j++) {
      const d = path.join(src, `d${i}`, `s${j}`);
      fs.mkdirSync(d, { recursive: true });
      for (let k = 0; k < 10; k++) fs.writeFileSync(path.join(d, `f${k}`), `file ${i}/${j}/${k}\n`);
    }
  }
}

/** The snapshot is exactly the tree on disk: its names, and the totals of its event. */
export function matches(repo: string, ev: WatchEvent, src: string): void {
  expect(snapshotPaths(repo, ev.id!, src)).toEqual(onDisk(src));
  expect({ files: ev.files, bytes: ev.bytes }).toEqual(totals(src));
}
