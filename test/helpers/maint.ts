// Helpers for the maintenance tests (forget, gc, check, locks): small repositories with many packs,
// planted lock files, pack surgery, restore-and-compare, a seeded PRNG and scratch-dir cleanup.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'vitest';
import { LocalBackend } from '../../src/backend/local.js';
import { nullSink } from '../../src/core/progress.js';
import { randomHex, toHex } from '../../src/core/ids.js';
import { Repository } from '../../src/repo/repository.js';
import { packIdFromName, type PackEntry, readPackHeader } from '../../src/store/pack.js';
import { encodeLock, type LockRecord } from '../../src/repo/lock.js';
import { describeTree, parseJson, snap, trackedDirs } from './cli.js';
import { currentHost } from '../../src/cli/host.js';

const scratch = trackedDirs('[maint]');

/** A temporary directory removed by `cleanupScratch` (call it in afterAll). */
export function scratchDir(prefix = 'snap-maint-'): string {
  return scratch.make(prefix);
}

export function cleanupScratch(): void {
  scratch.cleanup();
}

/**
 * A repository with small chunks and packs, so a few MB of data spread over many packs. zstd by
 * default, what `snap init` makes; deflate (older repositories) where a test asks for it.
 */
export async function smallRepo(dir: string, packSize = 128 * 1024, codec: 'zstd' | 'deflate' = 'zstd'): Promise<string> {
  const repo = await Repository.init(dir, { host: currentHost(), sink: nullSink }, {
    chunker: { algorithm: 'fastcdc-gear32-nc2', minSize: 8 * 1024, avgSize: 32 * 1024, maxSize: 128 * 1024, gearSeed: randomHex(32) },
    compression: codec === 'zstd' ? { codec: 'zstd', level: 3 } : { codec: 'deflate', level: 1 },
    packSize,
  });
  await repo.close();
  return dir;
}

export function writeFile(p: string, data: Buffer | string): void {
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, data);
}

/** Half random (incompressible), half repetitive: exercises both codecs. */
export function mixedData(n: number): Buffer {
  return Buffer.concat([randomBytes(Math.ceil(n / 2)), Buffer.alloc(Math.floor(n / 2), randomBytes(1)[0]!)]);
}

export interface SnapJson {
  id: string;
  time: string;
  paths: string[];
  tags: string[];
}

export function ok(args: string[], env?: Record<string, string>): string {
  const r = snap(args, { env });
  expect(r.code, `snap ${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

export function create(repo: string, src: string, extra: string[] = []): SnapJson {
  return parseJson<SnapJson>(ok(['--repo', repo, '--json', 'create', ...extra, src]));
}

export function list(repo: string): SnapJson[] {
  return parseJson<SnapJson[]>(ok(['--repo', repo, 'list', '--json']));
}

/** Restore a snapshot of one source path and compare it with a description taken at backup time. */
export function expectRestores(repo: string, id: string, src: string, expected: ReturnType<typeof describeTree>): void {
  const target = scratchDir('snap-restore-');
  ok(['--repo', repo, 'restore', id, target]);
  const got = describeTree(path.join(target, src));
  // Content, types, modes and sizes exactly; mtimes to 1 us: restore sets them through libuv's
  // double-based utimes, which can round an arbitrary nanosecond mtime by one microsecond.
  const strip = (m: typeof got) => new Map([...m].map(([k, v]) => [k, { ...v, mtimeUs: 0n }]));
  expect(strip(got), `snapshot ${id.slice(0, 8)} restores byte-exact`).toEqual(strip(expected));
  for (const [k, v] of got) {
    const diff = v.mtimeUs - expected.get(k)!.mtimeUs;
    expect(diff >= -1n && diff <= 1n, `mtime of ${Buffer.from(k, 'hex').toString()}`).toBe(true);
  }
  fs.rmSync(target, { recursive: true, force: true });
}

/** Every pack file of a repository with its header entries. */
export async function packs(repo: string): Promise<Map<string, PackEntry[]>> {
  const b = new LocalBackend(repo);
  const out = new Map<string, PackEntry[]>();
  try {
    for await (const blob of b.list('data/')) {
      const id = packIdFromName(blob.name);
      if (id) out.set(id, await readPackHeader(b, id));
    }
  } finally {
    // Its cached read handles are closed here, not left to the garbage collector (DEP0137).
    await b.close();
  }
  return out;
}

export async function findObject(repo: string, id: Buffer): Promise<{ pack: string; entry: PackEntry }> {
  for (const [pack, entries] of await packs(repo)) {
    const entry = entries.find((e) => e.id.equals(id));
    if (entry) return { pack, entry };
  }
  throw new Error(`object ${toHex(id)} is in no pack`);
}

export function packFile(repo: string, pack: string): string {
  return path.join(repo, 'data', pack.slice(0, 2), pack);
}

/** Every stored pack byte, concatenated: to test whether some content is still in the repository. */
export function allPackBytes(repo: string): Buffer {
  const parts: Buffer[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (!e.name.startsWith('.tmp-')) parts.push(fs.readFileSync(p));
    }
  };
  walk(path.join(repo, 'data'));
  return Buffer.concat(parts);
}

export function plantLock(repo: string, r: Partial<LockRecord>): string {
  const now = new Date().toISOString();
  const rec: LockRecord = { host: os.hostname(), pid: process.pid, time: now, refreshed: now, exclusive: true, command: 'gc', ...r };
  const id = randomHex(32);
  fs.mkdirSync(path.join(repo, 'locks'), { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(repo, 'locks', id), encodeLock(rec), { mode: 0o600 });
  return id;
}

export function lockFiles(repo: string): string[] {
  const d = path.join(repo, 'locks');
  return fs.existsSync(d) ? fs.readdirSync(d).filter((n) => !n.startsWith('.tmp-')) : [];
}

/** The seeded PRNG of every test (helpers/rng.ts). */
export { prng } from './rng.js';

export interface CheckJson {
  ok: boolean;
  snapshots: number;
  trees: number;
  blobs: number;
  packs: number;
  packs_read: number;
  unused_objects: number;
  problems: { kind: string; message: string; pack?: string; object?: string }[];
  leftovers: { kind: string; pack: string }[];
  affected: { snapshot: string; paths: string[]; count: number }[];
}

export function check(repo: string, extra: string[] = []): { code: number; report: CheckJson; stdout: string; stderr: string } {
  const r = snap(['--repo', repo, '--json', 'check', ...extra]);
  return { code: r.code, report: parseJson<CheckJson>(r.stdout), stdout: r.stdout, stderr: r.stderr };
}
