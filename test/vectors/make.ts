// Writes a folder of format test vectors with the current code (test/vectors/README.md):
//   sudo node --import tsx test/vectors/make.ts test/vectors/v<N>
// Run as root (it sets owners and makes device nodes). A version's folder is written once and
// then committed and never rewritten: it is what later versions of snap must still read.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fixedClock } from '../../src/core/clock.js';
import type { HostInfo } from '../../src/core/host.js';
import { fsDecode, fsEncode, hasEscapedBytes } from '../../src/core/bytes.js';
import { sha256, toHex } from '../../src/core/ids.js';
import type { Warning } from '../../src/core/progress.js';
import { encodeCbor } from '../../src/model/cbor.js';
import { FORMAT_VERSION, type RepoConfig } from '../../src/model/config.js';
import type { Node } from '../../src/model/node.js';
import { decodeSnapshot, encodeSnapshot, type Snapshot } from '../../src/model/snapshot.js';
import { decodeTree, encodeTree } from '../../src/model/tree.js';
import { createSnapshot } from '../../src/ops/backup/create.js';
import { Repository } from '../../src/repo/repository.js';
import { chunkBuffer, makeGear } from '../../src/store/chunker.js';
import { decompress } from '../../src/store/codec.js';
import { PackBuilder } from '../../src/store/pack.js';
import { entriesOfPack } from '../../src/store/pack-verify.js';
import { VERSION } from '../../src/cli/version.js';
import { type Content, contentBytes } from './content.js';
import { currentHost } from '../../src/cli/host.js';

// ---------------------------------------------------------------------------------------------
// The source tree. Paths are relative to SRC; names are hex in the vectors (one is not UTF-8).

const PARENT = '/tmp/snap-vectors';
const SRC = `${PARENT}/src`;

interface SourceEntry {
  path: Buffer;
  type: 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev';
  mode: number;
  uid: number;
  gid: number;
  /** Nanoseconds since the epoch. */
  mtimeNs: bigint;
  content?: Content;
  target?: Buffer;
  dev?: [number, number];
  /** Hard link to this earlier path. */
  linkOf?: Buffer;
  /** Excluded by the snapshot's exclude pattern: on disk, not in the snapshot. */
  excluded?: boolean;
}

const b = (s: string): Buffer => Buffer.from(s, 'utf8');
const DAY = 86_400n * 1_000_000_000n;
const T0 = 1_767_225_600n * 1_000_000_000n; // 2026-01-01T00:00:00Z

const LOREM = Array.from({ length: 60 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog, again and again\n`).join('');

function sourceV1(): SourceEntry[] {
  const f = (p: string | Buffer, content: Content, mtimeNs: bigint, extra: Partial<SourceEntry> = {}): SourceEntry => ({
    path: typeof p === 'string' ? b(p) : p, type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs, content, ...extra,
  });
  const d = (p: string, mtimeNs: bigint, extra: Partial<SourceEntry> = {}): SourceEntry => ({ path: b(p), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs, ...extra });
  return [
    f('hello.txt', { text: 'hello, snap\n' }, T0 + 1n),
    f('empty', { text: '' }, T0 + 2n),
    f('text.txt', { text: LOREM }, T0 + 3n),
    f('random.bin', { xorshift32: 1, length: 10_000 }, T0 + 4n),
    f('copy-of-random.bin', { xorshift32: 1, length: 10_000 }, T0 + 5n),
    f('zeros.bin', { zeros: 10_000 }, T0 + 6n),
    f('setuid', { text: '#!/bin/sh\necho hi\n' }, T0 + 7n, { mode: 0o4755 }),
    f('private', { text: 'owned by a user with no name\n' }, T0 + 8n, { mode: 0o600, uid: 4_000_000_000, gid: 4_000_000_001 }),
    f('old', { text: 'before 1970\n' }, -750_000_000n),
    f('epoch', { text: 'at the epoch\n' }, 0n),
    f('future', { text: 'after 2106\n' }, 4_294_967_301_500_000_000n),
    f('precise', { text: 'nanoseconds\n' }, 1_700_000_000_123_456_789n),
    f('été.txt', { text: 'a UTF-8 name\n' }, T0 + 9n),
    f(Buffer.from([0x6e, 0xff, 0x6f]), { text: 'a name that is not UTF-8\n' }, T0 + 10n),
    f('skip.tmp', { text: 'excluded\n' }, T0 + 11n, { excluded: true }),
    d('links', T0 + DAY),
    f('links/a', { xorshift32: 2, length: 700 }, T0 + 12n),
    { path: b('links/b'), type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: T0 + 12n, linkOf: b('links/a') },
    { path: b('symlink'), type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtimeNs: T0 + 13n, target: b('hello.txt') },
    { path: b('badlink'), type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtimeNs: T0 + 14n, target: Buffer.from([0x2e, 0x2e, 0x2f, 0xfe]) },
    { path: b('pipe'), type: 'fifo', mode: 0o640, uid: 0, gid: 0, mtimeNs: T0 + 15n },
    { path: b('sock'), type: 'socket', mode: 0o755, uid: 0, gid: 0, mtimeNs: T0 + 16n },
    d('dev', T0 + 2n * DAY),
    { path: b('dev/null'), type: 'chardev', mode: 0o666, uid: 0, gid: 0, mtimeNs: T0 + 17n, dev: [1, 3] },
    { path: b('dev/loop200'), type: 'blockdev', mode: 0o660, uid: 0, gid: 6, mtimeNs: T0 + 18n, dev: [7, 200] },
    { path: b('dev/max'), type: 'chardev', mode: 0o600, uid: 0, gid: 0, mtimeNs: T0 + 19n, dev: [4095, 1_048_575] },
    d('sticky', T0 + 3n * DAY, { mode: 0o1777 }),
  ];
}

/** The second snapshot: text.txt grows, hello.txt goes, new.txt comes. */
function sourceV2(s: SourceEntry[]): SourceEntry[] {
  const out = s.filter((e) => e.path.toString() !== 'hello.txt' && e.path.toString() !== 'symlink');
  const text = out.find((e) => e.path.toString() === 'text.txt')!;
  text.content = { concat: [{ text: LOREM }, { text: 'one more line\n' }] };
  text.mtimeNs = T0 + 4n * DAY;
  out.push({ path: b('new.txt'), type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: T0 + 4n * DAY + 1n, content: { text: 'new in the second snapshot\n' } });
  out.push({ path: b('symlink'), type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtimeNs: T0 + 4n * DAY + 2n, target: b('new.txt') });
  return out;
}

const SRC_MODE = 0o750;
const SRC_MTIME = [T0 + 5n * DAY, T0 + 6n * DAY];
const PARENT_MTIME = T0 + 7n * DAY;

function abs(p: Buffer): Buffer {
  return Buffer.concat([b(`${SRC}/`), p]);
}

/** Set an mtime to the nanosecond (touch -h: symlinks too; Node's utimes takes a double). */
function touch(p: Buffer, ns: bigint): void {
  // touch reads @-1.25 as minus 1.25 seconds: write the signed decimal of the whole value.
  const a = ns < 0n ? -ns : ns;
  const stamp = `@${ns < 0n ? '-' : ''}${a / 1_000_000_000n}.${String(a % 1_000_000_000n).padStart(9, '0')}`;
  if (Buffer.from(p.toString('utf8')).equals(p)) {
    execFileSync('touch', ['-h', '-d', stamp, '--', p.toString('utf8')], { stdio: 'inherit' });
    return;
  }
  // argv is UTF-8: a name that is not goes through an ASCII name (rename keeps the mtime).
  const tmp = Buffer.concat([p.subarray(0, p.lastIndexOf(0x2f) + 1), b('.touch-tmp')]);
  fs.renameSync(p, tmp);
  execFileSync('touch', ['-h', '-d', stamp, '--', tmp.toString('utf8')], { stdio: 'inherit' });
  fs.renameSync(tmp, p);
}

/** Write the source tree to disk exactly as `entries` describe it. */
function materialize(entries: SourceEntry[]): void {
  fs.rmSync(PARENT, { recursive: true, force: true });
  fs.mkdirSync(SRC, { recursive: true });
  const dirs = entries.filter((e) => e.type === 'dir');
  for (const e of dirs) fs.mkdirSync(abs(e.path));
  for (const e of entries) {
    const p = abs(e.path);
    switch (e.type) {
      case 'file':
        if (e.linkOf) fs.linkSync(abs(e.linkOf), p);
        else fs.writeFileSync(p, contentBytes(e.content!));
        break;
      case 'symlink':
        fs.symlinkSync(e.target!, p);
        break;
      case 'fifo':
        execFileSync('mkfifo', ['--', p.toString()]);
        break;
      case 'socket':
        execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', p.toString()]);
        break;
      case 'chardev':
      case 'blockdev':
        execFileSync('mknod', ['--', p.toString(), e.type === 'chardev' ? 'c' : 'b', String(e.dev![0]), String(e.dev![1])]);
        break;
    }
  }
  // Owners, modes, then times (deepest first, so a parent's mtime is set after its entries change).
  for (const e of entries) {
    if (e.linkOf) continue;
    const p = abs(e.path);
    fs.lchownSync(p, e.uid, e.gid);
    if (e.type !== 'symlink') fs.chmodSync(p, e.mode);
  }
  const byDepth = [...entries].sort((x, y) => y.path.filter((c) => c === 0x2f).length - x.path.filter((c) => c === 0x2f).length);
  for (const e of byDepth) if (!e.linkOf) touch(abs(e.path), e.mtimeNs);
}

function finishDirs(srcMtime: bigint): void {
  fs.chmodSync(SRC, SRC_MODE);
  touch(b(SRC), srcMtime);
  fs.chmodSync(PARENT, 0o755);
  touch(b(PARENT), PARENT_MTIME);
}

// ---------------------------------------------------------------------------------------------
// Repositories.

const SEED = createHash('sha256').update('snap format test vectors').digest('hex');
const CHUNKER = { algorithm: 'fastcdc-gear32-nc2' as const, minSize: 256, avgSize: 1024, maxSize: 4096, gearSeed: SEED };
const HOST: HostInfo = { hostname: 'vectors-host', username: 'vectors', pid: 1, uid: 0, isAlive: () => true };

interface SnapshotPlan {
  source: SourceEntry[];
  time: string;
  srcMtime: bigint;
}

async function makeRepo(dir: string, id: string, compression: RepoConfig['compression'], snapshots: SnapshotPlan[]): Promise<void> {
  const warnings: Warning[] = [];
  const sink = { warn: (w: Warning) => warnings.push(w) };
  await (await Repository.init(dir, { host: currentHost(), sink, clock: fixedClock(new Date('2026-01-01T12:00:00.000Z')) }, {
    id, chunker: CHUNKER, compression, packSize: 4096,
  })).close();
  for (const s of snapshots) {
    // One process per snapshot, as with the CLI (the object store counts what it added since opened).
    materialize(s.source);
    finishDirs(s.srcMtime);
    const repo = await Repository.open(dir, { host: currentHost(), sink });
    try {
      await createSnapshot(repo, { paths: [SRC], cwd: '/', tags: ['vectors', `v${FORMAT_VERSION}`], excludes: ['*.tmp'], time: new Date(s.time), host: HOST, program: `snap ${VERSION}`, sink });
    } finally {
      await repo.close();
    }
  }
  if (warnings.length > 0) throw new Error(`warnings while writing the vectors: ${JSON.stringify(warnings)}`);
  // The index is local and derived; the lock folder is empty. Neither is part of the vectors.
  fs.rmSync(path.join(dir, 'index'), { recursive: true, force: true });
  fs.rmSync(path.join(dir, 'locks'), { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Describing what was written, in the documented fields (byte strings as lowercase hex).

const hex = (x: Uint8Array): string => toHex(x);

export function nodeFields(n: Node): Record<string, unknown> {
  const r: Record<string, unknown> = {
    name: hex(n.name), type: n.type, mode: n.mode, uid: n.uid, gid: n.gid, user: n.user, group: n.group,
    mtime: [n.mtime.sec, n.mtime.nsec], size: n.size,
  };
  if (n.chunks) r.chunks = n.chunks.map(hex);
  if (n.tree) r.tree = hex(n.tree);
  if (n.target) r.target = hex(n.target);
  if (n.rdev !== undefined) r.rdev = n.rdev;
  if (n.inode) r.inode = [n.inode.dev, n.inode.ino, n.inode.links];
  if (n.xattrs && n.xattrs.length > 0) r.xattrs = n.xattrs.map((x) => [hex(x.name), hex(x.value)]);
  return r;
}

/** A `paths` or `excludes` item: JSON text when the record holds text, `{"bytes": hex}` for a byte string. */
export function pathField(p: string): string | { bytes: string } {
  return hasEscapedBytes(p) ? { bytes: hex(fsEncode(p)) } : p;
}

export function snapshotFields(s: Snapshot): Record<string, unknown> {
  const r: Record<string, unknown> = {
    v: 1, time: s.time, hostname: s.hostname, username: s.username, paths: s.paths.map(pathField), tags: s.tags, tree: hex(s.tree),
    program: s.program, excludes: s.excludes.map(pathField), summary: s.summary,
  };
  if (s.parent) r.parent = hex(s.parent);
  if (s.original) r.original = hex(s.original);
  return r;
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((x, y) => (x.name < y.name ? -1 : 1))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk('');
  return out;
}

async function describeRepo(dir: string, sources: SnapshotPlan[]): Promise<Record<string, unknown>> {
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config'), 'utf8')) as RepoConfig;
  const files = listFiles(dir);
  const packs: unknown[] = [];
  const trees: unknown[] = [];
  const blobs = new Map<string, Buffer>();
  for (const f of files.filter((x) => x.startsWith('data/'))) {
    const bytes = fs.readFileSync(path.join(dir, f));
    const id = path.basename(f);
    const entries = entriesOfPack(bytes, id);
    const hlen = bytes.readUInt32LE(bytes.length - 12);
    packs.push({
      id, file: f, size: bytes.length, header_length: hlen, type: entries[0]!.type,
      entries: entries.map((e) => [e.type === 'tree' ? 1 : 0, hex(e.id), e.offset, e.length, e.rawLength, e.codec]),
    });
    for (const e of entries) {
      const raw = await decompress(e.codec, bytes.subarray(e.offset, e.offset + e.length), e.rawLength, 'object');
      if (e.type === 'tree') trees.push({ id: hex(e.id), v: 1, entries: decodeTree(raw, 'tree').map(nodeFields) });
      else blobs.set(hex(e.id), Buffer.from(raw));
    }
  }
  const snapshots = files.filter((x) => x.startsWith('snapshots/')).map((f) => {
    const id = path.basename(f);
    const s = decodeSnapshot(fs.readFileSync(path.join(dir, f)), id);
    return { id, file: f, record: snapshotFields(s) };
  });
  snapshots.sort((x, y) => ((x.record.time as string) < (y.record.time as string) ? -1 : 1));
  const gear = makeGear(config.chunker);
  return {
    config,
    files: files.map((f) => ({ file: f, size: fs.statSync(path.join(dir, f)).size, sha256: hex(sha256(fs.readFileSync(path.join(dir, f)))) })),
    packs,
    snapshots,
    trees,
    sources: sources.map((plan, i) => ({
      snapshot: snapshots[i]!.id,
      root: SRC,
      root_mode: SRC_MODE,
      root_mtime_ns: String(plan.srcMtime),
      parent: PARENT,
      parent_mode: 0o755,
      parent_mtime_ns: String(PARENT_MTIME),
      entries: plan.source.map((e) => {
        const content = e.linkOf ? undefined : e.content;
        const data = content ? contentBytes(content) : undefined;
        let off = 0;
        const chunks = data && !e.excluded ? chunkBuffer(gear, data).map((c) => {
          const r = { offset: off, length: c.length, id: hex(sha256(c)) };
          off += c.length;
          if (!blobs.get(r.id)?.equals(c)) throw new Error(`chunk ${r.id} of ${e.path.toString()} is not in the repository`);
          return r;
        }) : undefined;
        return {
          path: hex(e.path), path_text: e.path.toString('utf8'), type: e.type, mode: e.mode, uid: e.uid, gid: e.gid,
          mtime_ns: String(e.mtimeNs), content, size: data?.length, sha256: data ? hex(sha256(data)) : undefined,
          chunks, target: e.target ? hex(e.target) : undefined, dev: e.dev, link_of: e.linkOf ? hex(e.linkOf) : undefined,
          excluded: e.excluded,
        };
      }),
    })),
  };
}

// ---------------------------------------------------------------------------------------------
// Records with edge values that a small repository does not reach (large numbers, long names, ...).

const id = (s: string): Buffer => sha256(b(s));

export function recordVectors(): unknown[] {
  const base = { mode: 0o644, uid: 0, gid: 0, user: 'root', group: 'root', mtime: { sec: 1_767_225_600, nsec: 0 }, size: 0 };
  const nodes: Node[] = [
    { name: b('a'), type: 'file', ...base, size: 4_294_967_296, mtime: { sec: -4_294_967_297, nsec: 999_999_999 }, chunks: Array.from({ length: 24 }, (_, i) => id(`chunk ${i}`)) },
    { name: b('b'.repeat(23)), type: 'file', ...base, size: 4_294_967_295, mtime: { sec: 4_294_967_296, nsec: 1 }, chunks: [id('x')], inode: { dev: 4_294_967_296, ino: 1_099_511_627_777, links: 65_536 } },
    { name: b('c'.repeat(24)), type: 'file', ...base, user: 'u'.repeat(24), group: 'é'.repeat(12), mtime: { sec: -1, nsec: 250_000_000 }, size: 255, chunks: [id('y')], uid: 65_535, gid: 65_536 },
    { name: b('d'.repeat(256)), type: 'dir', ...base, mode: 0o1777, tree: id('subtree') },
    { name: Buffer.from([0x65, 0xff]), type: 'symlink', ...base, mode: 0o777, target: Buffer.alloc(255, 0x41) },
    { name: b('f'), type: 'chardev', ...base, rdev: 4_294_967_295 },
    { name: b('g'), type: 'blockdev', ...base, rdev: 1992 },
    { name: b('h'), type: 'fifo', ...base, mode: 0o7777 },
    { name: b('i'), type: 'socket', ...base, mtime: { sec: -2_147_483_649, nsec: 0 } },
  ];
  const many: Node[] = Array.from({ length: 25 }, (_, i) => ({ name: b(`e${String(i).padStart(2, '0')}`), type: 'fifo' as const, ...base }));
  const summary = {
    filesNew: 1, filesChanged: 23, filesUnchanged: 24, dirsNew: 255, dirsChanged: 256, dirsUnchanged: 65_535,
    bytesRead: 4_294_967_296, totalBytes: 9_007_199_254_740_991, totalFiles: 65_536, dataAdded: 4_294_967_295, objectsAdded: 0, warnings: 0, durationMs: 1_234,
  };
  const snapMin: Snapshot = {
    time: '2026-01-02T03:04:05.678Z', hostname: 'h', username: 'u', paths: ['/'], tags: [], tree: id('root'), program: 'snap 0.1.0', excludes: [],
    summary: { filesNew: 0, filesChanged: 0, filesUnchanged: 0, dirsNew: 0, dirsChanged: 0, dirsUnchanged: 0, bytesRead: 0, totalBytes: 0, totalFiles: 0, dataAdded: 0, objectsAdded: 0, warnings: 0, durationMs: 0 },
  };
  const snapMax: Snapshot = {
    time: '9999-12-31T23:59:59.999Z', hostname: 'a-host-name-longer-than-23', username: 'ü', paths: ['/home/é', '/srv'], tags: ['repaired', 'x'.repeat(300)],
    tree: id('root2'), parent: id('parent'), original: id('original'), program: 'snap 0.1.0', excludes: ['*.tmp', 'node_modules/'], summary,
  };
  // Extended attributes (an ACL among them, in the kernel's binary form), and a hard-linked pair.
  const acl = Buffer.from('0200000001000600ffffffff04000400ffffffff10000400ffffffff20000400ffffffff', 'hex');
  const linkedInode = { dev: 2049, ino: 131_074, links: 2 };
  const linked: Node[] = [
    { name: b('attrs'), type: 'file', ...base, size: 3, chunks: [id('abc')], xattrs: [
      { name: b('system.posix_acl_access'), value: acl },
      { name: b('user.color'), value: b('red') },
      { name: Buffer.from([0x75, 0x73, 0x65, 0x72, 0x2e, 0xff]), value: Buffer.alloc(0) },
    ] },
    { name: b('dir'), type: 'dir', ...base, mode: 0o755, tree: id('subtree'), xattrs: [{ name: b('system.posix_acl_default'), value: acl }] },
    { name: b('link1'), type: 'file', ...base, size: 3, chunks: [id('abc')], inode: linkedInode },
    { name: b('link2'), type: 'file', ...base, size: 3, chunks: [id('abc')], inode: linkedInode },
  ];
  // Source paths and exclude patterns that are not UTF-8 are byte strings; UTF-8 ones stay text.
  // Sorted as strings with each stray byte as U+DC80..U+DCFF: "café" (U+00E9) before "caf\xe9".
  const snapBytes: Snapshot = {
    time: '0000-01-01T00:00:00.000Z', hostname: 'h', username: 'u',
    paths: ['/data/café', fsDecode(Buffer.from('/data/caf\xe9', 'latin1')), fsDecode(Buffer.from([0x2f, 0xff]))], tags: ['a', 'b'],
    tree: id('root3'), program: 'snap 0.1.0', excludes: ['*.tmp', fsDecode(Buffer.from([0x2a, 0xfe, 0x2a]))], summary: snapMin.summary,
  };
  const packEntries = [
    { type: 'blob' as const, id: id('p0'), offset: 0, length: 23, rawLength: 23, codec: 0 },
    { type: 'blob' as const, id: id('p1'), offset: 23, length: 65_536, rawLength: 1_048_576, codec: 2 },
    { type: 'blob' as const, id: id('p2'), offset: 65_559, length: 300, rawLength: 67_108_864, codec: 1 },
  ];
  const pb = new PackBuilder(0);
  for (const e of packEntries) pb.add(e.id, e.type, Buffer.alloc(e.length), e.rawLength, e.codec);
  const sealed = pb.seal();
  const header = sealed.bytes.subarray(65_859, sealed.bytes.length - 12);
  const packId = Buffer.from(sealed.id, 'hex');
  const out: unknown[] = [];
  const push = (name: string, kind: string, fields: unknown, bytes: Buffer): void => {
    out.push({ name, kind, fields, hex: hex(bytes), sha256: hex(sha256(bytes)) });
  };
  push('tree-empty', 'tree', { v: 1, entries: [] }, encodeTree([]));
  push('tree-edges', 'tree', { v: 1, entries: nodes.map(nodeFields) }, encodeTree(nodes));
  push('tree-25-entries', 'tree', { v: 1, entries: many.map(nodeFields) }, encodeTree(many));
  push('snapshot-minimal', 'snapshot', snapshotFields(snapMin), encodeSnapshot(snapMin).bytes);
  push('snapshot-edges', 'snapshot', snapshotFields(snapMax), encodeSnapshot(snapMax).bytes);
  push('pack-header', 'pack-header', { v: 1, entries: packEntries.map((e) => [0, hex(e.id), e.offset, e.length, e.rawLength, e.codec]) }, Buffer.from(header));
  push('index-object', 'index-object', [hex(packId), 0, 65_559, 300, 67_108_864, 1], encodeCbor([packId, 0, 65_559, 300, 67_108_864, 1]));
  push('index-pack', 'index-pack', [sealed.bytes.length, 3], encodeCbor([sealed.bytes.length, 3]));
  // Added to format 1's folder on 2026-12-03 (issue 19); the records above are unchanged.
  push('tree-xattrs-hard-links', 'tree', { v: 1, entries: linked.map(nodeFields) }, encodeTree(linked));
  push('snapshot-byte-paths', 'snapshot', snapshotFields(snapBytes), encodeSnapshot(snapBytes).bytes);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Chunker vectors: a seed, inputs from stated functions, the expected boundaries and ids.

function chunkerVectors(): unknown {
  const cases: { name: string; params: { minSize: number; avgSize: number; maxSize: number }; input: Content }[] = [
    { name: 'small sizes, random input', params: { minSize: 256, avgSize: 1024, maxSize: 4096 }, input: { xorshift32: 7, length: 65_536 } },
    { name: 'small sizes, zeros: every cut at maxSize', params: { minSize: 256, avgSize: 1024, maxSize: 4096 }, input: { zeros: 10_000 } },
    { name: 'small sizes, exactly minSize bytes: one chunk', params: { minSize: 256, avgSize: 1024, maxSize: 4096 }, input: { xorshift32: 8, length: 256 } },
    { name: 'small sizes, minSize + 1 bytes', params: { minSize: 256, avgSize: 1024, maxSize: 4096 }, input: { xorshift32: 8, length: 257 } },
    { name: 'small sizes, empty input: no chunks', params: { minSize: 256, avgSize: 1024, maxSize: 4096 }, input: { zeros: 0 } },
    { name: 'default sizes, random input', params: { minSize: 512 * 1024, avgSize: 1024 * 1024, maxSize: 8 * 1024 * 1024 }, input: { xorshift32: 9, length: 12 * 1024 * 1024 } },
    { name: 'default sizes, random then zeros', params: { minSize: 512 * 1024, avgSize: 1024 * 1024, maxSize: 8 * 1024 * 1024 }, input: { concat: [{ xorshift32: 10, length: 1_500_000 }, { zeros: 9_000_000 }] } },
  ];
  const table = makeGear({ ...CHUNKER }).table;
  return {
    gearSeed: SEED,
    gear_table: Array.from(table, (v) => v.toString(16).padStart(8, '0')),
    cases: cases.map((c) => {
      const g = makeGear({ ...CHUNKER, ...c.params });
      const data = contentBytes(c.input);
      let off = 0;
      return {
        ...c,
        maskS: g.maskSmall.toString(16).padStart(8, '0'),
        maskL: g.maskLarge.toString(16).padStart(8, '0'),
        input_sha256: hex(sha256(data)),
        chunks: chunkBuffer(g, data).map((ch) => {
          const r = { offset: off, length: ch.length, id: hex(sha256(ch)) };
          off += ch.length;
          return r;
        }),
      };
    }),
  };
}

// ---------------------------------------------------------------------------------------------

/** JSON with one value per line, except that a value short enough stays on one line. */
export function compactJson(v: unknown, indent: string): string {
  const flat = JSON.stringify(v);
  if (flat === undefined || flat.length + indent.length <= 160 || v === null || typeof v !== 'object') return flat ?? 'null';
  const inner = `${indent} `;
  if (Array.isArray(v)) return `[\n${v.map((x) => inner + compactJson(x, inner)).join(',\n')}\n${indent}]`;
  const items = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
  return `{\n${items.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${compactJson(x, inner)}`).join(',\n')}\n${indent}}`;
}

async function main(): Promise<void> {
  const out = process.argv[2];
  if (!out) throw new Error('usage: node --import tsx test/vectors/make.ts <new folder, e.g. test/vectors/v1>');
  if (fs.existsSync(out)) throw new Error(`${out} exists: vectors of a released format are never rewritten`);
  if (process.getuid?.() !== 0) throw new Error('run as root: the vectors hold files of other owners and device nodes');
  const s1 = sourceV1();
  const s2 = sourceV2(sourceV1());
  fs.mkdirSync(out, { recursive: true });
  const repos: Record<string, unknown> = {};
  const plan1: SnapshotPlan[] = [
    { source: s1, time: '2026-01-02T03:04:05.678Z', srcMtime: SRC_MTIME[0]! },
    { source: s2, time: '2026-01-03T03:04:05.000Z', srcMtime: SRC_MTIME[1]! },
  ];
  await makeRepo(path.join(out, 'repo'), '5a5a5a5a000000000000000000000001', { codec: 'zstd', level: 3 }, plan1);
  repos.repo = await describeRepo(path.join(out, 'repo'), plan1);
  const plan2: SnapshotPlan[] = [{ source: s2, time: '2026-01-03T03:04:05.000Z', srcMtime: SRC_MTIME[1]! }];
  await makeRepo(path.join(out, 'repo-deflate'), '5a5a5a5a000000000000000000000002', { codec: 'deflate', level: 6 }, plan2);
  repos['repo-deflate'] = await describeRepo(path.join(out, 'repo-deflate'), plan2);
  fs.rmSync(PARENT, { recursive: true, force: true });
  const written = `snap ${VERSION}, format ${FORMAT_VERSION}, on ${new Date().toISOString().slice(0, 10)}`;
  const json = (v: unknown): string => `${compactJson(v, '')}\n`;
  fs.writeFileSync(path.join(out, 'repos.json'), json({ written_by: written, repositories: repos }));
  fs.writeFileSync(path.join(out, 'records.json'), json({ written_by: written, records: recordVectors() }));
  fs.writeFileSync(path.join(out, 'chunker.json'), json({ written_by: written, ...(chunkerVectors() as object) }));
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
