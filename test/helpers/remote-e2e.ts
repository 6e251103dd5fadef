// Shared parts of the end-to-end tests of remote repositories (test/remote-*.test.ts): source
// trees to back up, and the checks every test makes of a repository through the built CLI.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'vitest';
import { type RunResult, describeTree, parseJson, snap, snapAsync, tmpDir } from './cli.js';

/** A tree with a few MiB of random data (several chunks), small files, a symlink and an empty folder. */
export function makeSource(seed: string, bigBytes = 3 * 1024 * 1024): string {
  const src = path.join(tmpDir(), `src-${seed}`);
  fs.mkdirSync(path.join(src, 'sub', 'deep'), { recursive: true });
  fs.mkdirSync(path.join(src, 'empty'));
  fs.writeFileSync(path.join(src, 'big.bin'), randomBytes(bigBytes));
  for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(src, 'sub', `f${i}.txt`), `${seed} file ${i}\n`.repeat(i + 1));
  fs.writeFileSync(path.join(src, 'sub', 'deep', 'same.txt'), 'the same in every tree\n');
  fs.symlinkSync('sub/f1.txt', path.join(src, 'link'));
  return src;
}

export function ok(args: string[], env: Record<string, string>): RunResult {
  const r = snap(args, { env });
  if (r.code !== 0) throw new Error(`snap ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r;
}

export interface ListedSnapshot {
  id: string;
  paths: string[];
  tags?: string[];
}

export function listSnapshots(repo: string, env: Record<string, string>): ListedSnapshot[] {
  return parseJson<ListedSnapshot[]>(ok(['--repo', repo, '--json', 'list'], env).stdout);
}

/** Restore snapshot `ref` and compare it with `src` entry by entry (bytes, modes, mtimes, links). */
export function expectRestoresExactly(repo: string, ref: string, src: string, env: Record<string, string>): void {
  const target = tmpDir('snap-restore-');
  ok(['--repo', repo, 'restore', ref, target], env);
  expect(describeTree(path.join(target, src))).toEqual(describeTree(src));
  fs.rmSync(target, { recursive: true, force: true });
}

/** `check --read-data` is clean. */
export function expectCheckClean(repo: string, env: Record<string, string>): void {
  const r = snap(['--repo', repo, 'check', '--read-data'], { env });
  expect([r.code, r.stderr]).toEqual([0, expect.anything()]);
}

/** Run snap in the background; resolves with its exit code and what it said on stderr. */
export function runSnap(args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = snapAsync(args, { env });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.stdout.resume();
    p.on('close', (code) => resolve({ code, stderr }));
  });
}
