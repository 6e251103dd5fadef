// `snap export` end to end through the built CLI, read back by real tools: GNU tar, Info-ZIP
// unzip, and Python's tarfile/zipfile as second readers. Extracted trees are compared with the
// source (bytes, modes, mtimes, symlinks, hard links, awkward names); --verify, --path, stdout,
// refusal to overwrite, interruption, damaged repositories and bounded memory are checked too.
import { currentHost } from '../src/cli/host.js';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSnapError } from '../src/core/errors.js';
import { verifyArchive } from '../src/ops/restore/export.js';
import { readZip } from '../src/ops/restore/export/zip-read.js';
import { ZipWriter } from '../src/ops/restore/export/zip.js';
import { Repository } from '../src/repo/repository.js';
import { CLI, CLI_NODE_FLAGS, ROOT, type EntryDesc, describeTree, parseJson, snap, tmpDir } from './helpers/cli.js';
import { lackOfRoom } from './helpers/disk.js';

// zip stores local DOS times; Python's zipfile reads them back: one time zone for writer and reader.
process.env.TZ = 'UTC';
const toolEnv = { ...process.env, LC_ALL: 'C.UTF-8', TZ: 'UTC' };
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
function scratch(): string {
  const d = tmpDir('snap-export-');
  dirs.push(d);
  return d;
}

function tool(cmd: string, args: string[], input?: Buffer): Buffer {
  const r = spawnSync(cmd, args, { env: toolEnv, input, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}`);
  return r.stdout;
}

function ok(args: string[]): string {
  const r = snap(args);
  expect(r.code, `snap ${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

const b = (s: string | number[]) => Buffer.from(s as string);
const hex = (s: string | Buffer) => Buffer.from(s).toString('hex');

/** A source tree with the cases an archive must carry exactly; returns its absolute path. */
function makeSource(base: string): string {
  const src = path.join(base, 'src');
  const p = (...parts: Array<string | Buffer>) => Buffer.concat(parts.flatMap((x, i) => (i === 0 ? [b(src), b('/'), b(x as string)] : [b('/'), Buffer.from(x)])));
  const w = (file: Buffer, data: string | Buffer, mode = 0o644) => {
    fs.writeFileSync(file, data);
    fs.chmodSync(file, mode);
  };
  for (const d of ['docs/empty-dir', 'docs/sub', 'data', 'names', 'special']) fs.mkdirSync(path.join(src, d), { recursive: true });
  w(p('docs/hello.txt'), 'hello world\n', 0o640);
  w(p('docs/empty'), '', 0o600);
  w(p('docs/sub/run.sh'), '#!/bin/sh\necho hi\n', 0o755);
  w(p('docs/sub/setuid'), 'x', 0o4755);
  w(p('data/random.bin'), randomBytes(2_500_000));
  w(p('data/shared.txt'), 'linked content\n');
  fs.linkSync(p('data/shared.txt'), p('docs/shared-link'));
  fs.symlinkSync('hello.txt', p('docs/link'));
  fs.symlinkSync('x/'.repeat(100) + 'dangling-target', p('docs/long-link'));
  fs.symlinkSync(Buffer.from([0x2e, 0x2f, 0xff]), p('docs/bytes-link'));
  const deep = ['long', ...Array.from({ length: 5 }, (_, i) => `level-${i}-${'d'.repeat(50)}`)];
  fs.mkdirSync(path.join(src, ...deep), { recursive: true });
  w(p(deep.join('/'), 'file-at-a-path-longer-than-255-bytes.txt'), 'deep\n');
  w(p('names', Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x20, 0x6e, 0x61, 0x6d, 0x65])), 'not utf-8');
  w(p('names', 'new\nline'), 'newline');
  w(p('names', ' leading space'), 'space');
  w(p('names', '-dash'), 'dash');
  w(p('names', 'ünïcödé.txt'), 'utf-8');
  tool('mkfifo', [path.join(src, 'special/fifo')]);
  tool('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', path.join(src, 'special/sock')]);
  // Times: microseconds everywhere (what describeTree compares), nanoseconds on one file;
  // directories last, deepest first, since creating entries changes them.
  let t = 1_650_000_000;
  const all: Buffer[] = [];
  const walk = (d: Buffer) => {
    for (const n of fs.readdirSync(d, { encoding: 'buffer' })) {
      const f = Buffer.concat([d, b('/'), n]);
      if (fs.lstatSync(f).isDirectory()) walk(f);
      all.push(f);
    }
  };
  walk(b(src));
  for (const f of all) fs.lutimesSync(f, t, (t += 1000) + 0.123456);
  fs.utimesSync(src, t, t + 0.5);
  tool('touch', ['-h', '-d', '@1650000000.123456789', path.join(src, 'docs/hello.txt')]);
  return src;
}

/** The source as describeTree sees it, without what archives cannot hold (sockets). */
function sourceTree(src: string): Map<string, EntryDesc> {
  const m = describeTree(src);
  for (const [k, v] of m) if (v.type === 'other') m.delete(k);
  return m;
}

/** What survives a zip and unzip: second mtimes (none for symlinks), no hard links, fifos as empty files. */
function zipView(m: Map<string, EntryDesc>): Map<string, EntryDesc> {
  const empty = createHash('sha256').digest('hex');
  const out = new Map<string, EntryDesc>();
  for (const [k, v] of m) {
    const d: EntryDesc = { ...v, mtimeUs: v.type === 'symlink' ? 0n : (v.mtimeUs / 1_000_000n) * 1_000_000n };
    delete d.linkGroup;
    if (v.type === 'fifo') Object.assign(d, { type: 'file', size: 0, sha256: empty });
    out.set(k, d);
  }
  return out;
}

// Python as a second reader: one JSON object per entry, names as hex bytes.
const PY_LIST = String.raw`
import hashlib, json, stat, sys, tarfile, zipfile
p, kind = sys.argv[1], sys.argv[2]
def emit(name, **d): print(json.dumps({'name': name.hex(), **d}))
if kind == 'zip':
    z = zipfile.ZipFile(p)
    assert z.testzip() is None
    for i in z.infolist():
        name = i.filename.encode('utf-8' if i.flag_bits & 0x800 else 'cp437').rstrip(b'/')
        mode = i.external_attr >> 16
        kinds = {stat.S_IFREG: 'file', stat.S_IFDIR: 'dir', stat.S_IFLNK: 'symlink', stat.S_IFIFO: 'fifo'}
        data = z.read(i)
        emit(name, type=kinds.get(stat.S_IFMT(mode), '?'), mode=stat.S_IMODE(mode), size=i.file_size,
             date=list(i.date_time), sha256=hashlib.sha256(data).hexdigest(), content=data.hex() if stat.S_ISLNK(mode) else None)
else:
    with tarfile.open(p, encoding='utf-8', errors='surrogateescape') as t:
        for m in t:
            name = m.name.encode('utf-8', 'surrogateescape')
            d = dict(mode=m.mode, mtime=m.mtime, size=m.size)
            if m.isreg(): d.update(type='file', sha256=hashlib.sha256(t.extractfile(m).read()).hexdigest())
            elif m.isdir(): d.update(type='dir')
            elif m.issym(): d.update(type='symlink', target=m.linkname.encode('utf-8', 'surrogateescape').hex())
            elif m.islnk(): d.update(type='hardlink', target=m.linkname.encode('utf-8', 'surrogateescape').hex())
            elif m.isfifo(): d.update(type='fifo')
            emit(name, **d)
`;

interface PyEntry { name: string; type: string; mode: number; size: number; mtime?: number; date?: number[]; sha256?: string; target?: string; content?: string }

function pythonList(archive: string, kind: 'tar' | 'zip'): Map<string, PyEntry> {
  const lines = tool('python3', ['-c', PY_LIST, archive, kind]).toString().trim().split('\n');
  return new Map(lines.map((l) => parseJson<PyEntry>(l)).map((e) => [e.name, e]));
}

describe('snap export', () => {
  let base: string;
  let src: string;
  let repo: string;
  let prefix: string; // archive names of source entries start with this (the path without '/')
  let source: Map<string, EntryDesc>;

  beforeAll(() => {
    base = scratch();
    src = makeSource(base);
    repo = path.join(base, 'repo');
    ok(['--repo', repo, 'init']);
    ok(['--repo', repo, 'create', src]);
    prefix = src.slice(1) + '/';
    source = sourceTree(src);
  });

  const exportTo = (name: string, ...extra: string[]): { file: string; out: string } => {
    const file = path.join(base, name);
    const out = ok(['--repo', repo, 'export', 'latest', file, '--verify', ...extra]);
    expect(out).toMatch(/^verified .*: \d+ entries and .* of file data match the snapshot$/m);
    return { file, out };
  };

  it.each(['tar', 'tar.gz'] as const)('%s: GNU tar extracts the exact tree (bytes, modes, ns mtimes, symlinks, hard links, names)', (fmt) => {
    const { file, out } = exportTo(`all.${fmt}`);
    expect(out).toMatch(/exported snapshot \w{8} to .*: \d+ entries \(\d+ files, \d+ dirs, 3 symlinks, 1 hard link, 1 other\)/);
    expect(out).toMatch(/1 socket skipped/);
    const x = path.join(base, `x-${fmt}`);
    fs.mkdirSync(x);
    tool('tar', ['--warning=no-unknown-keyword', fmt === 'tar' ? '-xf' : '-xzf', file, '-C', x]);
    const got = path.join(x, src);
    expect(describeTree(got)).toEqual(source);
    expect(fs.statSync(path.join(got, 'docs/hello.txt'), { bigint: true }).mtimeNs).toBe(1_650_000_000_123_456_789n);
    // The directories on the way to the source are in the archive too, with their modes.
    expect(fs.statSync(path.join(x, path.dirname(src))).mode & 0o7777).toBe(fs.statSync(path.dirname(src)).mode & 0o7777);
  });

  it('tar: Python tarfile reads the same names, types, modes, times, sizes, data and links', () => {
    const { file } = exportTo('py.tar');
    const py = pythonList(file, 'tar');
    for (const [k, want] of source) {
      const e = py.get(hex(prefix) + k);
      expect(e, Buffer.from(k, 'hex').toString()).toBeDefined();
      const first = want.linkGroup && want.linkGroup !== k ? want.linkGroup : undefined;
      expect(e!.type).toBe(first ? 'hardlink' : want.type);
      expect(e!.mode).toBe(want.mode);
      expect(Math.abs(Math.round(e!.mtime! * 1e6) - Number(want.mtimeUs))).toBeLessThanOrEqual(1);
      if (first) expect(e!.target).toBe(hex(prefix) + first);
      else if (want.type === 'file') expect([e!.size, e!.sha256]).toEqual([want.size, want.sha256]);
      if (want.type === 'symlink') expect(e!.target).toBe(want.target);
    }
    const ours = [...py.keys()].filter((n) => n.startsWith(hex(prefix)));
    expect(ours.length).toBe(source.size);
    // Plus exactly the parent directories of the source.
    expect([...py.keys()].filter((n) => !n.startsWith(hex(prefix))).map((n) => Buffer.from(n, 'hex').toString()).sort()).toEqual(
      src.split('/').slice(1).map((_, i, a) => a.slice(0, i + 1).join('/')),
    );
  });

  it('zip: unzip -^ -K restores names, bytes, modes, mtimes (seconds) and symlinks; Python zipfile agrees', () => {
    const { file } = exportTo('all.zip');
    const x = path.join(base, 'x-zip');
    tool('unzip', ['-^', '-K', '-q', file, '-d', x]);
    expect(zipView(describeTree(path.join(x, src)))).toEqual(zipView(source));
    const py = pythonList(file, 'zip');
    for (const [k, want] of zipView(source)) {
      const e = py.get(hex(prefix) + k);
      expect(e, Buffer.from(k, 'hex').toString()).toBeDefined();
      const sec = Number(source.get(k)!.mtimeUs / 1_000_000n);
      const d = new Date(sec * 1000);
      expect(e!.date).toEqual([d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds() & ~1]);
      expect(e!.mode).toBe(want.mode);
      if (want.type === 'symlink') expect([e!.type, e!.content]).toEqual(['symlink', want.target]);
      else if (source.get(k)!.type === 'fifo') expect(e!.type).toBe('fifo'); // the type bits survive; unzip makes a file
      else expect(e!.type).toBe(want.type);
      if (want.type === 'file') expect([e!.size, e!.sha256]).toEqual([want.size, want.sha256]);
    }
  });

  it('--path limits the export to subtrees (relative or absolute) plus their parent directories', () => {
    const file = path.join(base, 'subset.tar');
    ok(['--repo', repo, 'export', 'latest', file, '--path', 'docs/sub', '--path', path.join(src, 'names'), '--verify']);
    const names = tool('tar', ['--warning=no-unknown-keyword', '-tf', file]).toString('latin1').split('\n').filter(Boolean);
    const rel = names.filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length)).filter(Boolean);
    expect(rel.filter((n) => !n.startsWith('names/'))).toEqual(['docs/', 'docs/sub/', 'docs/sub/run.sh', 'docs/sub/setuid']);
    expect(rel.filter((n) => n.startsWith('names/')).length).toBe(6);
    expect(names).toContain(prefix);
    // A path that is not in the snapshot is an error, and no archive appears.
    const r = snap(['--repo', repo, 'export', 'latest', path.join(base, 'none.tar'), '--path', 'no/such/path']);
    expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/no\/such\/path is not in snapshot .*\[SNAP_NOT_FOUND\]/)]);
    expect(fs.readdirSync(base).filter((n) => n.includes('none.tar'))).toEqual([]);
  });

  it("'-' writes to stdout (piped into tar -tzf -); the summary goes to stderr", () => {
    const r = spawnSync('sh', ['-c', `"${process.execPath}" "${CLI}" --repo "${repo}" export latest - --format tgz --path docs | tar -tzf -`], { env: toolEnv });
    expect(r.status, r.stderr.toString()).toBe(0);
    const names = r.stdout.toString().split('\n');
    expect(names).toContain(`${prefix}docs/hello.txt`);
    expect(names).toContain(`${prefix}docs/empty-dir/`);
    expect(r.stderr.toString()).toMatch(/exported snapshot \w+ to standard output \(tar\.gz\)/);
    // A reader that stops early: not a crash; snap stops quietly, as a program killed by SIGPIPE
    // would (exit 141), like every command whose output is closed (docs/errors.md).
    const early = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" --repo "${repo}" export latest - --format tar | head -c 100 >/dev/null; exit \${PIPESTATUS[0]}`]);
    expect([early.status, early.stderr.toString()]).toEqual([141, '']);
    expect(fs.readdirSync(path.join(repo, 'locks'))).toEqual([]);
  });

  it('usage errors: stdout without --format, an unknown format, --verify with stdout', () => {
    for (const [args, msg] of [
      [['-'], /standard output needs --format \(tar, tar\.gz \(or tgz\) or zip\)/],
      [['out.rar'], /cannot tell the archive format from 'out\.rar'.*\.tar, \.tar\.gz, \.tgz or \.zip/],
      [['out.tar', '--format', '7z'], /unknown archive format '7z': choose tar, tar\.gz \(or tgz\) or zip/],
      [['-', '--format', 'tar', '--verify'], /--verify needs an OUTPUT file/],
      [['.', '--format', 'zip'], /\. is a directory: give the archive's file name/],
    ] as const) {
      const r = snap(['--repo', repo, 'export', 'latest', ...args], { cwd: base });
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(msg)]);
    }
  });

  it('an existing OUTPUT is refused without --force and replaced with it', () => {
    const file = path.join(base, 'exists.zip');
    fs.writeFileSync(file, 'precious');
    const r = snap(['--repo', repo, 'export', 'latest', file]);
    expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/exists\.zip already exists \(use --force to replace it\) \[SNAP_EXISTS\]/)]);
    expect(fs.readFileSync(file, 'utf8')).toBe('precious');
    const j = parseJson<{ entries: number; sockets_skipped: number; archive_bytes: number }>(ok(['--repo', repo, '--json', 'export', 'latest', file, '--force']));
    expect(j.sockets_skipped).toBe(1);
    expect(j.archive_bytes).toBe(fs.statSync(file).size);
    expect(tool('unzip', ['-tq', file]).toString()).toMatch(/No errors detected/);
    expect(fs.readdirSync(base).filter((n) => n.includes('snap-tmp'))).toEqual([]);
  });

  it('the verifier catches a flipped byte in file data (uncompressed tar; zip stored deflate block)', async () => {
    const random = fs.readFileSync(path.join(src, 'data/random.bin'));
    const results: string[] = [];
    for (const fmt of ['tar', 'zip'] as const) {
      const file = path.join(base, `tamper.${fmt}`);
      ok(['--repo', repo, 'export', 'latest', file]);
      const bytes = fs.readFileSync(file);
      // Random data deflates to stored blocks, so its bytes are in the zip as is (unless a block
      // header falls inside the 32 bytes looked for: then the next place is tried).
      const at = [1_000_000, 1_100_000, 1_200_000].map((o) => bytes.indexOf(random.subarray(o, o + 32))).find((i) => i > 0);
      expect(at).toBeDefined();
      bytes[at! + 10]! ^= 0x01;
      fs.writeFileSync(file, bytes);
      const r = await Repository.open(repo, { host: currentHost(), sink: {} });
      try {
        const snaps = await r.listSnapshots();
        const err = await verifyArchive(r, snaps.at(-1)!, file, { format: fmt, selection: undefined, sink: {} }).catch((e: unknown) => e);
        expect(isSnapError(err, 'SNAP_CORRUPT'), String(err)).toBe(true);
        results.push((err as Error).message);
      } finally {
        await r.close();
      }
    }
    expect(results[0]).toMatch(/verification of .*tamper\.tar failed: .*data\/random\.bin: the data before byte \d+ differs from the snapshot/);
    expect(results[1]).toMatch(/tamper\.zip.*data\/random\.bin/);
  });

  it('the verifier catches a changed header field (a tar mode, with a valid checksum)', async () => {
    const file = path.join(base, 'tamper-mode.tar');
    ok(['--repo', repo, 'export', 'latest', file]);
    const bytes = fs.readFileSync(file);
    const h = bytes.indexOf(b(`${prefix}docs/hello.txt\0`));
    expect(h % 512).toBe(0);
    bytes.write('0000600\0', h + 100, 'latin1');
    bytes.fill(0x20, h + 148, h + 156);
    let sum = 0;
    for (let i = h; i < h + 512; i++) sum += bytes[i]!;
    bytes.write(sum.toString(8).padStart(6, '0') + '\0 ', h + 148, 'latin1');
    fs.writeFileSync(file, bytes);
    expect(tool('tar', ['--warning=no-unknown-keyword', '-tvf', file]).toString()).toMatch(/-rw------- .*docs\/hello\.txt/);
    const r = await Repository.open(repo, { host: currentHost(), sink: {} });
    try {
      const snaps = await r.listSnapshots();
      await expect(verifyArchive(r, snaps.at(-1)!, file, { format: 'tar', selection: undefined, sink: {} })).rejects.toThrow(
        /docs\/hello\.txt: the archive has mode 600, the snapshot 640/,
      );
    } finally {
      await r.close();
    }
  });

  it('a damaged chunk fails the export, naming the file; no OUTPUT is left', () => {
    const b2 = scratch();
    const s2 = path.join(b2, 'src');
    fs.mkdirSync(s2);
    fs.writeFileSync(path.join(s2, 'victim.bin'), randomBytes(300_000));
    const r2 = path.join(b2, 'repo');
    ok(['--repo', r2, 'init']);
    ok(['--repo', r2, 'create', s2]);
    const packs: string[] = [];
    const walk = (d: string) => {
      for (const n of fs.readdirSync(d, { withFileTypes: true })) (n.isDirectory() ? walk : (f: string) => packs.push(f))(path.join(d, n.name));
    };
    walk(path.join(r2, 'data'));
    const biggest = packs.sort((a, c) => fs.statSync(c).size - fs.statSync(a).size)[0]!;
    const fd = fs.openSync(biggest, 'r+');
    fs.writeSync(fd, Buffer.from([0x5a, 0xa5]), 0, 2, 1000); // inside the random (stored raw) chunk
    fs.closeSync(fd);
    for (const name of ['out.tar.gz', 'out.zip']) {
      const r = snap(['--repo', r2, 'export', 'latest', path.join(b2, name)]);
      expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/victim\.bin: the file data in the repository is damaged, so the export was stopped.*\[SNAP_CORRUPT\]/)]);
      expect(fs.readdirSync(b2).filter((n) => n.includes('out.'))).toEqual([]);
    }
  });
});

describe('snap export --verify of an encrypted repository', () => {
  // Chunk ids are HMAC-SHA256 there (keyed): the verifier hashed the archive's data with plain
  // SHA-256 and reported every file with data as differing from the snapshot (SNAP_CORRUPT).
  it('tar, tar.gz and zip verify; a flipped byte of file data is still caught', async () => {
    const base = scratch();
    const src = makeSource(base);
    const repo = path.join(base, 'repo');
    const cache = path.join(base, 'cache');
    const env = { SNAP_PASSWORD: 'export and verify', XDG_CACHE_HOME: cache };
    const run = (args: string[]) => snap(['--repo', repo, ...args], { env });
    expect(run(['init', '--encrypt']).code).toBe(0);
    expect(run(['create', src]).code).toBe(0);
    for (const fmt of ['tar', 'tar.gz', 'zip']) {
      const r = run(['export', 'latest', path.join(base, `enc.${fmt}`), '--verify']);
      expect(r.code, `${fmt}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/^verified .*: \d+ entries and .* of file data match the snapshot$/m);
    }
    // The same check still fails where it should: a byte of random.bin changed in the tar.
    const random = fs.readFileSync(path.join(src, 'data/random.bin'));
    const file = path.join(base, 'enc.tar');
    const bytes = fs.readFileSync(file);
    const at = bytes.indexOf(random.subarray(1_000_000, 1_000_032));
    expect(at).toBeGreaterThan(0);
    bytes[at + 10]! ^= 0x01;
    fs.writeFileSync(file, bytes);
    const r = await Repository.open(repo, { host: currentHost(), sink: {}, password: async () => Buffer.from(env.SNAP_PASSWORD), indexCache: path.join(cache, 'snap', 'index') });
    try {
      const snaps = await r.listSnapshots();
      const err = await verifyArchive(r, snaps.at(-1)!, file, { format: 'tar', selection: undefined, sink: {} }).catch((e: unknown) => e);
      expect(isSnapError(err, 'SNAP_CORRUPT'), String(err)).toBe(true);
      expect((err as Error).message).toMatch(/data\/random\.bin: the data before byte \d+ differs from the snapshot/);
      // And only that: the untouched zip verifies through the same repository.
      await verifyArchive(r, snaps.at(-1)!, path.join(base, 'enc.zip'), { format: 'zip', selection: undefined, sink: {} });
    } finally {
      await r.close();
    }
  });
});

describe('snap export: zip64 reader on a sparse archive (offsets past 4 GiB, 66000 entries)', () => {
  it('readZip follows zip64 end records, locators and offset extras', async () => {
    const file = path.join(scratch(), 'offsets.zip');
    const fd = fs.openSync(file, 'w');
    let position = 5 * 2 ** 30; // a hole: offsets past 4 GiB without writing 5 GiB
    const w = new ZipWriter({ get position() { return position; }, async write(c: Uint8Array) { position += fs.writeSync(fd, c, 0, c.length, position); }, async end() { fs.closeSync(fd); } }, 6);
    const entry = (name: string, content: string) => ({
      path: b(name), type: 'file' as const, mode: 0o644, uid: 1, gid: 2, uname: '', gname: '', mtime: { sec: 1_700_000_000, nsec: 0 }, size: content.length,
      data: async function* () { if (content) yield b(content); },
    });
    await w.add(entry('first.txt', 'first'));
    for (let i = 0; i < 66_000; i++) await w.add(entry(`many/${i}`, ''));
    await w.add(entry('last.txt', 'last'));
    await w.finish();
    let n = 0;
    const seen: string[] = [];
    for await (const e of readZip(file)) {
      n++;
      if (e.size > 0) {
        const parts: Buffer[] = [];
        for await (const p of e.data()) parts.push(p);
        seen.push(`${e.path.toString()}=${Buffer.concat(parts).toString()} ${e.uid}:${e.gid} ${e.mtime?.sec}`);
      }
    }
    expect(n).toBe(66_002);
    expect(seen).toEqual(['first.txt=first 1:2 1700000000', 'last.txt=last 1:2 1700000000']);
  }, 60_000);
});

describe('snap export: a 2 GiB file', () => {
  const GiB = 2 ** 30;
  let base: string;
  let repo: string;
  let big: string;
  let bigSha: string;
  // The file and its repository at once (about 4.1 GiB), then the repository and the export.
  let lack: string | undefined;

  beforeAll(() => {
    lack = lackOfRoom(5 * GiB);
    if (lack) return;
    base = scratch();
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    big = path.join(src, 'big.bin');
    // A random 1 MiB block repeated with counters: every chunk differs (no dedup), generated fast.
    const block = randomBytes(1 << 20);
    const buf = Buffer.alloc(16 << 20);
    const h = createHash('sha256');
    const fd = fs.openSync(big, 'w');
    for (let i = 0; i < 2048; i += 16) {
      for (let j = 0; j < 16; j++) {
        block.copy(buf, j << 20);
        buf.writeUInt32LE(i + j, j << 20);
        buf.writeUInt32LE(i + j, (j << 20) + 600_000);
      }
      fs.writeSync(fd, buf);
      h.update(buf);
    }
    fs.closeSync(fd);
    bigSha = h.digest('hex');
    repo = path.join(base, 'repo');
    ok(['--repo', repo, 'init']);
    ok(['--repo', repo, 'create', src]);
    fs.rmSync(big); // only the repository is needed from here on
  }, 240_000);

  it('exports and verifies it with peak RSS under 200 MB; GNU tar extracts the same bytes', (ctx) => {
    if (lack) ctx.skip(lack);
    const out = path.join(base, 'big.tar');
    const rssFile = path.join(base, 'rss');
    const r = spawnSync(process.execPath, [...CLI_NODE_FLAGS, path.join(ROOT, 'test/helpers/rss-wrapper.mjs'), '--repo', repo, 'export', 'latest', out, '--verify'], {
      env: { ...process.env, SNAP_RSS_FILE: rssFile, SNAP_REPO: '' },
    });
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(r.stdout.toString()).toMatch(/verified .*big\.tar: \d+ entries and 2\.00 GiB/);
    expect(Number(fs.readFileSync(rssFile, 'utf8'))).toBeLessThan(200 * 1024 * 1024);
    const sha = spawnSync('sh', ['-c', `tar -xOf "${out}" "${big.slice(1)}" | sha256sum`]).stdout.toString().split(' ')[0];
    expect(sha).toBe(bigSha);
    expect(fs.statSync(out).size).toBeGreaterThan(2 * GiB);
    fs.rmSync(out);
  }, 180_000);

  /** Starts an export to .tar.gz (slow for random data) and waits until its temp file has 20 MB. */
  async function startExport(name: string) {
    const child = spawn(process.execPath, [CLI, '--repo', repo, 'export', 'latest', path.join(base, name)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    for (let i = 0; i < 600; i++) {
      const tmp = fs.readdirSync(base).find((n) => n.startsWith(`.${name}.snap-tmp-`));
      if (tmp && fs.statSync(path.join(base, tmp)).size > 20e6) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return { child, exited, stderr: () => stderr };
  }

  it('kill -9 in the middle of an export leaves no OUTPUT (only a dot-named temp file)', async (ctx) => {
    if (lack) ctx.skip(lack);
    const run = await startExport('killed.tar.gz');
    run.child.kill('SIGKILL');
    await run.exited;
    const names = fs.readdirSync(base);
    expect(names).not.toContain('killed.tar.gz');
    expect(names.filter((n) => n.startsWith('.killed.tar.gz.snap-tmp-')).length).toBe(1);
  }, 120_000);

  it('SIGINT stops the export, removes the temp file and writes no OUTPUT', async (ctx) => {
    if (lack) ctx.skip(lack);
    const run = await startExport('interrupted.tar.gz');
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(130);
    expect(run.stderr()).toMatch(/export interrupted by SIGINT; .*interrupted\.tar\.gz was not written \[SNAP_INTERRUPTED\]/);
    expect(fs.readdirSync(base).filter((n) => n.includes('interrupted.tar.gz'))).toEqual([]);
  }, 120_000);
});
