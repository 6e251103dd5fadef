// The export writers checked by real readers: GNU tar, Info-ZIP unzip/zipinfo and Python's
// tarfile/zipfile. Every archive is written to a temp dir, read back, and compared byte for byte.
import { isUtf8 } from 'node:buffer';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createArchiveWriter,
  formatFromName,
  type ArchiveEntry,
  type ArchiveEntryType,
  type ArchiveFormat,
} from '../src/ops/restore/export/archive.js';
import { TarWriter } from '../src/ops/restore/export/tar.js';
import { ZipWriter } from '../src/ops/restore/export/zip.js';

const root = fs.mkdtempSync(join(tmpdir(), 'snap-export-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const env = { ...process.env, LC_ALL: 'C.UTF-8', TZ: 'UTC' };
const isRoot = process.getuid?.() === 0;

interface Spec {
  path: Buffer;
  type: ArchiveEntryType;
  mode: number;
  mtime: { sec: number; nsec: number };
  content?: Buffer;
  linkTarget?: Buffer;
  uid?: number; gid?: number; uname?: string; gname?: string;
  devMajor?: number; devMinor?: number;
}

const b = (...parts: Array<string | number[]>): Buffer => Buffer.concat(parts.map((p) => Buffer.from(p)));
const t = (sec: number, nsec = 0) => ({ sec, nsec });
const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const pseudoRandom = (n: number) => {
  const out = Buffer.alloc(n);
  for (let i = 0, x = 12345; i < n; i++) out[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return out;
};
const deepPath = 'top/' + Array.from({ length: 6 }, (_, i) => `level${i}-${'d'.repeat(40)}`).join('/') + '/leaf.txt';

const specs: Spec[] = [
  { path: b('top'), type: 'dir', mode: 0o755, mtime: t(1600000000, 111111111) },
  { path: b('top/empty-dir'), type: 'dir', mode: 0o700, mtime: t(1600000001, 222222222) },
  { path: b('top/sticky'), type: 'dir', mode: 0o1777, mtime: t(1600000002) },
  { path: b('top/hello.txt'), type: 'file', mode: 0o640, mtime: t(1650000000, 123456789), content: b('hello world\n') },
  { path: b('top/empty'), type: 'file', mode: 0o600, mtime: t(1650000001, 1), content: Buffer.alloc(0) },
  { path: b('top/random.bin'), type: 'file', mode: 0o644, mtime: t(1650000002, 999999999), content: pseudoRandom(200_003) },
  { path: b('top/setuid'), type: 'file', mode: 0o4755, mtime: t(1650000003), content: b('#!/bin/sh\n') },
  { path: b('top/link'), type: 'symlink', mode: 0o777, mtime: t(1650000004), linkTarget: b('hello.txt') },
  { path: b('top/long-link'), type: 'symlink', mode: 0o777, mtime: t(1650000005), linkTarget: b('x/'.repeat(100), 'target') },
  { path: b('top/hard'), type: 'hardlink', mode: 0o640, mtime: t(1650000000, 123456789), linkTarget: b('top/hello.txt'), content: b('hello world\n') },
  { path: b('top/fifo'), type: 'fifo', mode: 0o644, mtime: t(1650000006, 5) },
  { path: b('top/with space'), type: 'file', mode: 0o644, mtime: t(1650000007), content: b('space') },
  { path: b('top/new\nline'), type: 'file', mode: 0o644, mtime: t(1650000008), content: b('newline') },
  { path: b('top/-dash'), type: 'file', mode: 0o644, mtime: t(1650000009), content: b('dash') },
  { path: b('top/ünïcödé.txt'), type: 'file', mode: 0o644, mtime: t(1650000010), content: b('utf8') },
  { path: b('top/bad', [0xff, 0xfe], ' name'), type: 'file', mode: 0o644, mtime: t(1650000011), content: b('binary name') },
  { path: b(deepPath), type: 'file', mode: 0o644, mtime: t(1650000012, 42), content: b('deep') },
  { path: b('top/', 'n'.repeat(240)), type: 'file', mode: 0o644, mtime: t(1650000013), content: b('long component') },
  { path: b('top/pre1970'), type: 'file', mode: 0o644, mtime: t(-100000, 250000000), content: b('old') },
  {
    path: b('top/owners'), type: 'file', mode: 0o644, mtime: t(1650000014), content: b('owned'),
    uid: 3000000, gid: 4000000, uname: 'a-user-name-longer-than-thirty-two-bytes', gname: 'gröup',
  },
];

function toEntry(s: Spec, chunk = 7777): ArchiveEntry {
  const content = s.content;
  return {
    path: s.path, type: s.type, mode: s.mode, mtime: s.mtime,
    uid: s.uid ?? 1000, gid: s.gid ?? 1000, uname: s.uname ?? 'alice', gname: s.gname ?? 'staff',
    size: content?.length ?? 0, linkTarget: s.linkTarget, devMajor: s.devMajor, devMinor: s.devMinor,
    data: content
      ? async function* () {
          for (let i = 0; i < content.length; i += chunk) yield content.subarray(i, i + chunk);
        }
      : undefined,
  };
}

async function writeArchive(format: ArchiveFormat, file: string, entries: ArchiveEntry[], gzipLevel?: number) {
  const w = createArchiveWriter(format, fs.createWriteStream(file), { gzipLevel });
  for (const e of entries) await w.add(e);
  await w.finish();
}

/** Runs a reader; its stderr must hold nothing but the expected warnings. */
function run(cmd: string, args: string[], allowedWarning?: RegExp): Buffer {
  const r = spawnSync(cmd, args, { env, maxBuffer: 1 << 28 });
  const stderr = r.stderr.toString().split('\n').filter((l) => l && !allowedWarning?.test(l));
  if (r.status !== 0 || stderr.length > 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.status} ${stderr.join('\n')}`);
  return r.stdout;
}
// GNU tar 1.34 does not know the POSIX hdrcharset keyword yet: it warns, then keeps the raw bytes.
// It also warns about (and still restores) the pre-1970 mtime.
const GNU_TAR_WARNINGS = /Ignoring unknown extended header keyword 'hdrcharset'|implausibly old time stamp/;
const key = (p: Buffer) => p.toString('hex');

/** Every entry under `dir`, keyed by the hex of its raw relative path (names are not text). */
function walk(dir: Buffer, rel: Buffer = Buffer.alloc(0), out = new Map<string, { abs: Buffer; st: fs.BigIntStats }>()) {
  for (const name of fs.readdirSync(dir, { encoding: 'buffer' })) {
    const abs = Buffer.concat([dir, b('/'), name]);
    const r = rel.length ? Buffer.concat([rel, b('/'), name]) : name;
    const st = fs.lstatSync(abs, { bigint: true });
    out.set(key(r), { abs, st });
    if (st.isDirectory()) walk(abs, r, out);
  }
  return out;
}

/** Implicit parents (e.g. of the deep path) exist on disk but have no entry of their own. */
function expectOnlyImplicitParents(tree: Map<string, unknown>) {
  const known = new Set(specs.map((s) => key(s.path)));
  for (const k of tree.keys()) {
    if (!known.has(k)) expect(deepPath.startsWith(Buffer.from(k, 'hex').toString() + '/')).toBe(true);
  }
}

const PY_TAR = String.raw`
import json, os, sys, tarfile, hashlib
out = []
with tarfile.open(sys.argv[1]) as tf:
    for m in tf:
        f = tf.extractfile(m) if m.isreg() else None
        out.append(dict(name=os.fsencode(m.name).hex(), type=m.type.decode(), mode=m.mode, uid=m.uid, gid=m.gid,
            uname=m.uname, gname=m.gname, size=m.size, mtime=m.mtime, link=os.fsencode(m.linkname).hex(),
            dev=[m.devmajor, m.devminor], sha=hashlib.sha256(f.read()).hexdigest() if f else None))
print(json.dumps(out))
`;

const TYPEFLAG: Record<ArchiveEntryType, string> = {
  file: '0', hardlink: '1', symlink: '2', chardev: '3', blockdev: '4', dir: '5', fifo: '6',
};

describe.each(['tar', 'tar.gz'] as const)('%s writer', (format) => {
  const file = join(root, `all.${format}`);
  const gz = format === 'tar.gz' ? 'z' : '';

  it('GNU tar extracts every entry byte-exact (names, data, modes, ns mtimes, links, owners)', async () => {
    await writeArchive(format, file, specs.map((s) => toEntry(s)));
    const dir = join(root, `x-${format}`);
    fs.mkdirSync(dir);
    // -p keeps setuid/sticky for non-root too; --numeric-owner because 'staff' exists locally.
    run('tar', [`-x${gz}pf`, file, '--numeric-owner', '-C', dir], GNU_TAR_WARNINGS);
    const tree = walk(b(dir));
    expectOnlyImplicitParents(tree);
    for (const s of specs) {
      const got = tree.get(key(s.path));
      expect(got, s.path.toString()).toBeDefined();
      const { abs, st } = got!;
      const expectedNs = BigInt(s.mtime.sec) * 1_000_000_000n + BigInt(s.mtime.nsec);
      if (s.type === 'symlink') {
        expect(st.isSymbolicLink()).toBe(true);
        expect(fs.readlinkSync(abs, { encoding: 'buffer' }).equals(s.linkTarget!)).toBe(true);
        continue;
      }
      expect(Number(st.mode) & 0o7777, s.path.toString()).toBe(s.mode);
      expect(st.mtimeNs, s.path.toString()).toBe(expectedNs);
      if (s.type === 'dir') expect(st.isDirectory()).toBe(true);
      if (s.type === 'fifo') expect(st.isFIFO()).toBe(true);
      if (s.content) expect(sha(fs.readFileSync(abs)), s.path.toString()).toBe(sha(s.content));
      if (isRoot) expect([st.uid, st.gid]).toEqual([BigInt(s.uid ?? 1000), BigInt(s.gid ?? 1000)]);
    }
    expect(tree.get(key(b('top/hard')))!.st.ino).toBe(tree.get(key(b('top/hello.txt')))!.st.ino);
  });

  it('GNU tar lists nanosecond mtimes, pax owners and the hard link', () => {
    const listing = run('tar', [`-t${gz}v`, '--full-time', '--numeric-owner', '-f', file], GNU_TAR_WARNINGS).toString('latin1');
    expect(listing).toMatch(/^-rw-r----- 1000\/1000 +12 2022-04-15 05:20:00\.123456789 top\/hello\.txt$/m);
    expect(listing).toMatch(/^-rw-r--r-- 3000000\/4000000 +5 2022-04-15 05:20:14 +top\/owners$/m);
    expect(listing).toMatch(/^lrwxrwxrwx .* top\/long-link -> (x\/){100}target$/m);
    expect(listing).toMatch(/^hrw-r----- .* top\/hard link to top\/hello\.txt$/m);
    expect(listing).toMatch(/^-rw-r--r-- .* top\/bad\\377\\376 name$/m); // GNU tar quotes the raw bytes
    expect(run('tar', [`-t${gz}vf`, file], GNU_TAR_WARNINGS).toString()).toContain('a-user-name-longer-than-thirty-two-bytes/gröup');
  });

  it('Python tarfile reads the same entries', () => {
    const members = JSON.parse(run('python3', ['-c', PY_TAR, file]).toString()) as Array<Record<string, unknown>>;
    expect(members.map((m) => m.name)).toEqual(specs.map((s) => key(s.path))); // tarfile drops a dir's '/'
    specs.forEach((s, i) => {
      const m = members[i]!;
      expect(m.type).toBe(TYPEFLAG[s.type]);
      expect(m.mode).toBe(s.mode);
      expect([m.uid, m.gid, m.uname, m.gname]).toEqual([s.uid ?? 1000, s.gid ?? 1000, s.uname ?? 'alice', s.gname ?? 'staff']);
      expect(Math.abs((m.mtime as number) - (s.mtime.sec + s.mtime.nsec / 1e9))).toBeLessThan(1e-6);
      if (s.linkTarget) expect(m.link).toBe(key(s.linkTarget));
      if (s.type === 'file') expect(m.sha).toBe(sha(s.content!));
    });
  });
});

describe('tar headers beyond ustar', () => {
  it('devices, far-future mtimes and a 16 GiB size (pax size), read by GNU tar and Python', async () => {
    // Capture the headers only: the 16 GiB of zeros are counted, not stored. The archive is
    // then rebuilt as a sparse file (data and trailer are all zeros) for the real readers.
    const size = 16 * 2 ** 30;
    const kept: Buffer[] = [];
    let position = 0;
    const sink = {
      get position() { return position; },
      async write(chunk: Uint8Array) { if (position < 8192) kept.push(Buffer.from(chunk)); position += chunk.length; },
      async end() {},
    };
    const zeros = Buffer.alloc(4 << 20);
    const w = new TarWriter(sink);
    const base = { uid: 0, gid: 0, uname: 'root', gname: 'disk', size: 0 };
    await w.add({ ...base, path: b('dev/null'), type: 'chardev', mode: 0o666, mtime: t(1700000000), devMajor: 1, devMinor: 3 });
    await w.add({ ...base, path: b('dev/loop0'), type: 'blockdev', mode: 0o660, mtime: t(10_000_000_000, 5), devMajor: 7, devMinor: 0 });
    const headerBytes = position + 1536; // the pax header (2 blocks) and ustar header of the big file
    await w.add({ ...base, path: b('huge.bin'), type: 'file', mode: 0o600, mtime: t(1700000000), size,
      data: async function* () { for (let n = 0; n < size; n += zeros.length) yield zeros; } });
    await w.finish();
    const file = join(root, 'huge-sparse.tar');
    fs.writeFileSync(file, Buffer.concat(kept).subarray(0, headerBytes));
    fs.truncateSync(file, position);

    const listing = run('tar', ['-tv', '--full-time', '--numeric-owner', '-f', file]).toString();
    expect(listing).toMatch(/^crw-rw-rw- 0\/0 +1,3 2023-11-14 22:13:20 dev\/null$/m);
    expect(listing).toMatch(/^brw-rw---- 0\/0 +7,0 2286-11-20 17:46:40.000000005 dev\/loop0$/m);
    expect(listing).toMatch(/^-rw------- 0\/0 +17179869184 2023-11-14 22:13:20 +huge.bin$/m);
    const members = JSON.parse(run('python3', ['-c', PY_TAR.replace('if m.isreg()', 'if False'), file]).toString());
    expect(members.map((m: { type: string; dev: number[]; size: number; mtime: number }) => [m.type, m.dev, m.size, m.mtime]))
      .toEqual([['3', [1, 3], 0, 1700000000], ['4', [7, 0], 0, 10_000_000_000], ['0', [0, 0], size, 1700000000]]);
  });
});

const PY_ZIP = String.raw`
import json, sys, zipfile, hashlib
out = []
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    for i in z.infolist():
        utf8 = bool(i.flag_bits & 0x800)
        out.append(dict(name=i.filename.encode('utf-8' if utf8 else 'cp437').hex(), utf8=utf8, system=i.create_system,
            mode=i.external_attr >> 16, size=i.file_size, date=list(i.date_time), sha=hashlib.sha256(z.read(i)).hexdigest()))
print(json.dumps(dict(bad=bad, entries=out)))
`;
const S_IFMT: Record<ArchiveEntryType, number> = {
  file: 0o100000, hardlink: 0o100000, dir: 0o040000, symlink: 0o120000, fifo: 0o010000, chardev: 0o020000, blockdev: 0o060000,
};
const zipName = (s: Spec) => (s.type === 'dir' ? Buffer.concat([s.path, b('/')]) : s.path);
const zipContent = (s: Spec) => (s.type === 'symlink' ? s.linkTarget! : s.content ?? Buffer.alloc(0));

describe('zip writer', () => {
  const file = join(root, 'all.zip');

  it('zipinfo shows Unix modes, symlinks, fifos and directories', async () => {
    await writeArchive('zip', file, specs.map((s) => toEntry(s)));
    const info = run('zipinfo', [file]).toString('latin1');
    expect(info).toMatch(/^drwx------ +6\.3 unx +0 bx stor .* top\/empty-dir\/$/m);
    expect(info).toMatch(/^drwxrwxrwt .* top\/sticky\/$/m);
    expect(info).toMatch(/^-rwsr-xr-x .* defN .* top\/setuid$/m);
    expect(info).toMatch(/^lrwxrwxrwx +6\.3 unx +9 bx stor .* top\/link$/m);
    expect(info).toMatch(/^prw-r--r-- .* top\/fifo$/m);
    expect(info).toMatch(/^-rw------- .* 0 bx stor .* top\/empty$/m);
  });

  it('unzip -t passes; unzip -^ -K -X restores exact names, data, modes, mtimes and symlinks', () => {
    expect(run('unzip', ['-t', file]).toString()).toContain('No errors detected');
    const dir = join(root, 'x-zip');
    // -^ keeps control characters and undecodable bytes in names (plain unzip drops them),
    // -K keeps setuid/setgid/sticky, -X restores the owners from the 0x7875 field when root.
    run('unzip', ['-q', '-^', '-K', '-X', '-o', file, '-d', dir]);
    const tree = walk(b(dir));
    expectOnlyImplicitParents(tree);
    for (const s of specs) {
      const { abs, st } = tree.get(key(s.path))!;
      const what = s.path.toString();
      if (s.type === 'symlink') {
        expect(fs.readlinkSync(abs, { encoding: 'buffer' }).equals(s.linkTarget!), what).toBe(true);
        continue;
      }
      expect(Number(st.mode) & 0o7777, what).toBe(s.mode);
      // The extended-timestamp field gives whole seconds; unzip ignores a negative one and
      // falls back to the DOS time, clamped to 1980.
      if (s.mtime.sec >= 0) expect(st.mtimeNs, what).toBe(BigInt(s.mtime.sec) * 1_000_000_000n);
      if (s.type === 'dir') expect(st.isDirectory(), what).toBe(true);
      else expect(sha(fs.readFileSync(abs)), what).toBe(sha(zipContent(s))); // a fifo is an empty file
      if (isRoot) expect([st.uid, st.gid]).toEqual([BigInt(s.uid ?? 1000), BigInt(s.gid ?? 1000)]);
    }
    // Zip has no hard links: the second name is an independent copy.
    expect(tree.get(key(b('top/hard')))!.st.ino).not.toBe(tree.get(key(b('top/hello.txt')))!.st.ino);
  });

  it('Python zipfile: CRCs check, names decode to the exact bytes, modes and DOS times match', () => {
    const { bad, entries } = JSON.parse(run('python3', ['-c', PY_ZIP, file]).toString());
    expect(bad).toBeNull();
    expect(entries.map((e: { name: string }) => e.name)).toEqual(specs.map((s) => key(zipName(s))));
    specs.forEach((s, i) => {
      const e = entries[i];
      expect(e.utf8, s.path.toString()).toBe(isUtf8(s.path)); // the flag only where it is true
      expect(e.system).toBe(3);
      expect(e.mode).toBe(S_IFMT[s.type] | s.mode);
      expect(e.sha).toBe(sha(zipContent(s)));
      const d = new Date(Math.max(s.mtime.sec, 315532800 + new Date(0).getTimezoneOffset() * 60) * 1000);
      expect(e.date).toEqual([d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds() & ~1]);
    });
  });

  it('zip64: a 4 GiB + 1 MiB entry streamed from a lazy zero generator', async () => {
    const big = join(root, 'zip64.zip');
    const size = 4 * 2 ** 30 + 2 ** 20;
    const zeros = Buffer.alloc(1 << 20);
    const small = (name: string) => toEntry({ path: b(name), type: 'file', mode: 0o644, mtime: t(1700000000), content: b(name) });
    await writeArchive('zip', big, [
      small('before.txt'),
      { ...small('huge.bin'), size, data: async function* () { for (let n = 0; n < size; n += zeros.length) yield zeros; } },
      small('after.txt'),
    ], 1); // level 1 deflates zeros ~3x faster than 6; the container is the same
    // unzip -t inflates and CRC-checks all 4 GiB; Python reads the sizes from the zip64 extras.
    expect(run('zipinfo', [big]).toString()).toMatch(/^-rw-r--r-- .* 4296015872 bX defN .* huge\.bin$/m);
    expect(run('unzip', ['-t', big]).toString()).toMatch(/testing: huge\.bin +OK[\s\S]*No errors detected/);
    const py = String.raw`
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
print(z.getinfo('huge.bin').file_size, z.read('before.txt').decode(), z.read('after.txt').decode())`;
    expect(run('python3', ['-c', py, big]).toString().trim()).toBe(`${size} before.txt after.txt`);
  }, 180_000);

  it('zip64 offsets and end records: entries past 4 GiB and 66000 entries, in a sparse file', async () => {
    // The sink starts 5 GiB into a sparse file: readers follow the central directory's offsets
    // and never read the hole, so offsets past 4 GiB cost no disk and no time.
    const sparse = join(root, 'offsets.zip');
    const fd = fs.openSync(sparse, 'w');
    let position = 5 * 2 ** 30;
    const sink = {
      get position() { return position; },
      async write(c: Uint8Array) { position += fs.writeSync(fd, c, 0, c.length, position); },
      async end() { fs.closeSync(fd); },
    };
    const w = new ZipWriter(sink, 6);
    const file = (name: string, content: Buffer) => toEntry({ path: b(name), type: 'file', mode: 0o644, mtime: t(1700000000), content });
    await w.add(file('first.txt', b('first')));
    for (let i = 0; i < 66000; i++) await w.add(file(`many/${i}`, Buffer.alloc(0)));
    await w.add(file('last.txt', b('last')));
    await w.finish();
    expect(run('unzip', ['-tq', sparse]).toString()).toMatch(/^No errors detected/);
    const py = String.raw`
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
print(z.testzip(), len(z.infolist()), z.getinfo('first.txt').header_offset, z.read('first.txt').decode(), z.read('last.txt').decode())`;
    expect(run('python3', ['-c', py, sparse]).toString().trim()).toBe(`None 66002 ${5 * 2 ** 30} first last`);
  }, 60_000);
});

describe('all formats', () => {
  it.each([
    ['a.tar.gz', 'tar.gz'], ['B.TGZ', 'tar.gz'], ['c.tar', 'tar'], ['d.zip', 'zip'], ['e.tar.bz2', undefined], ['f', undefined],
  ])('formatFromName(%s) = %s', (name, format) => expect(formatFromName(name)).toBe(format));

  it.each(['tar', 'tar.gz', 'zip'] as const)('%s: data shorter or longer than size is an error', async (format) => {
    for (const [size, content] of [[10, 'short'], [3, 'too long']] as const) {
      const out = fs.createWriteStream(join(root, `bad-${size}.${format}`));
      const w = createArchiveWriter(format, out);
      const entry = { ...toEntry({ path: b('f'), type: 'file', mode: 0o644, mtime: t(0), content: b(content) }), size };
      await expect(w.add(entry)).rejects.toThrow(size === 10 ? /shorter than its size 10/ : /longer than its size 3/);
      out.destroy();
    }
  });

  it.each(['tar', 'tar.gz', 'zip'] as const)('%s: an output error fails add() instead of hanging', async (format) => {
    const out = new Writable({ write: (_chunk, _enc, cb) => cb(new Error('disk full')) });
    const w = createArchiveWriter(format, out);
    const content = pseudoRandom(1 << 20); // incompressible, so gzip has output before finish
    await expect((async () => {
      await w.add(toEntry({ path: b('f'), type: 'file', mode: 0o644, mtime: t(0), content }));
      await w.finish();
    })()).rejects.toThrow('disk full');
  });
});

// A child process, so its peak RSS is the writer's alone: node + tsx + the writer.
const SCRIPT = `
import { createWriteStream, readFileSync } from 'node:fs';
import { createArchiveWriter } from ${JSON.stringify(new URL('../src/ops/restore/export/archive.ts', import.meta.url).href)};
const [format, out, sizeArg] = process.argv.slice(2);
const size = Number(sizeArg);
const zeros = Buffer.alloc(1 << 20);
const w = out === '-' ? createArchiveWriter(format, process.stdout, { keepOpen: true }) : createArchiveWriter(format, createWriteStream(out));
await w.add({ path: Buffer.from('big.bin'), type: 'file', mode: 0o644, uid: 0, gid: 0, uname: 'root', gname: 'root',
  mtime: { sec: 1700000000, nsec: 0 }, size,
  data: async function* () { for (let n = 0; n < size; n += zeros.length) yield zeros.subarray(0, Math.min(zeros.length, size - n)); } });
await w.finish();
// VmHWM, not getrusage's maxRSS, which keeps the high-water mark of the test runner this was forked from.
process.stderr.write(JSON.stringify({ maxRssKiB: Number(/^VmHWM:\\s+(\\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]) }));
`;

describe('bounded memory and stdout', () => {
  const script = join(root, 'export-child.mts');
  const child = (args: string[]) => {
    fs.writeFileSync(script, SCRIPT);
    const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: new URL('..', import.meta.url).pathname, maxBuffer: 1 << 26,
    });
    if (r.status !== 0) throw new Error(r.stderr.toString());
    return { stdout: r.stdout, rss: (JSON.parse(r.stderr.toString()) as { maxRssKiB: number }).maxRssKiB };
  };

  it.each(['tar.gz', 'zip'] as const)('%s of a 1 GiB file from a lazy generator peaks under 200 MB RSS', (format) => {
    const out = join(root, `mem.${format}`);
    const { rss } = child([format, out, String(2 ** 30)]);
    expect(rss).toBeLessThan(200 * 1024);
    const listing = format === 'zip' ? run('zipinfo', [out]) : run('tar', ['-tvzf', out]);
    expect(listing.toString()).toMatch(/ 1073741824 /);
    fs.rmSync(out);
  }, 120_000);

  it('writes to process.stdout without ending it', () => {
    const { stdout } = child(['tar.gz', '-', String(3 * 2 ** 20 + 5)]);
    const out = join(root, 'stdout.tgz');
    fs.writeFileSync(out, stdout);
    expect(run('tar', ['-tvzf', out]).toString()).toMatch(/ 3145733 .* big\.bin/);
  }, 60_000);
});
