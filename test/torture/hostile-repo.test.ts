// The repository and the restore target are untrusted. Crafted trees (unsafe names, huge declared
// lengths, deep nesting, wrong types, CBOR extension tags) and snapshot records are refused with
// SNAP_CORRUPT in bounded time and memory; restore never writes outside its target, whatever the
// snapshot holds or the target already contains; everything snap creates in a repository is
// readable by its owner only.
import { currentHost } from '../../src/cli/host.js';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../../src/backend/local.js';
import { encodeCbor } from '../../src/model/cbor.js';
import { encodeSnapshot } from '../../src/model/snapshot.js';
import { PackBuilder, packName } from '../../src/store/pack.js';
import { CLI, CLI_NODE_FLAGS, LONG, RSS_WRAPPER, type Rng, cleanupTmp, cli, cliOk, genTree, listSnapshots, manifest, notOwnerOnly, restoreAndCompare, restoredAt, seededIt, tmpDir } from './lib.js';

afterAll(cleanupTmp);

const sha = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

/** Store raw objects (bytes as given, codec raw unless told) in a pack of their type. */
async function putObjects(repo: string, type: 'blob' | 'tree', objs: { raw: Buffer; stored?: Buffer; codec?: number; rawLength?: number }[]): Promise<Buffer[]> {
  const b = new PackBuilder();
  const ids: Buffer[] = [];
  for (const o of objs) {
    const id = sha(o.raw);
    ids.push(id);
    b.add(id, type, o.stored ?? o.raw, o.rawLength ?? o.raw.length, o.codec ?? 0);
  }
  const { id, bytes } = b.seal();
  await new LocalBackend(repo).put(packName(id), bytes);
  return ids;
}

const ZERO_SUMMARY = {
  filesNew: 0, filesChanged: 0, filesUnchanged: 0, dirsNew: 0, dirsChanged: 0, dirsUnchanged: 0,
  bytesRead: 0, totalBytes: 0, totalFiles: 0, dataAdded: 0, objectsAdded: 0, warnings: 0, durationMs: 0,
};

/** A snapshot record for a root tree, written straight into storage; then the index is rebuilt. */
async function putSnapshot(repo: string, tree: Buffer, tag: string): Promise<string> {
  const { id, bytes } = encodeSnapshot({
    time: new Date().toISOString(), hostname: 'crafted', username: 'mallory', paths: ['/x'], tags: [tag], tree,
    program: 'crafted', excludes: [], summary: ZERO_SUMMARY,
  });
  await new LocalBackend(repo).put(`snapshots/${id}`, bytes);
  return id;
}

function fileNode(name: Buffer | string, chunks: Buffer[], size: number): Record<string, unknown> {
  return { name: Buffer.from(name), type: 'file', mode: 0o644, uid: 0, gid: 0, user: '', group: '', mtime: [1, 0], size, chunks };
}

function dirNode(name: Buffer | string, tree: Buffer): Record<string, unknown> {
  return { name: Buffer.from(name), type: 'dir', mode: 0o755, uid: 0, gid: 0, user: '', group: '', mtime: [1, 0], size: 0, tree };
}

function treeBytes(entries: unknown[]): Buffer {
  return encodeCbor({ v: 1, entries });
}

async function freshRepo(): Promise<{ base: string; repo: string }> {
  const base = tmpDir();
  const repo = path.join(base, 'repo');
  await cliOk(['--repo', repo, 'init']);
  return { base, repo };
}

/** Everything under `dir`, as relative paths (to prove nothing appeared outside a target). */
function listAll(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(r);
      if (e.isDirectory() && !e.isSymbolicLink()) walk(path.join(d, e.name), r);
    }
  };
  walk(dir, '');
  return out.sort();
}

/** Run the CLI, recording its peak RSS: crafted input must not make memory explode. */
async function cliRss(args: string[], timeoutMs = 30_000): Promise<{ code: number | null; stderr: string; stdout: string; rssMiB: number }> {
  const dir = tmpDir('snap-rss-');
  const rssFile = path.join(dir, 'rss');
  const r = spawnSync(process.execPath, [...CLI_NODE_FLAGS, RSS_WRAPPER, ...args], { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, SNAP_RSS_FILE: rssFile, SNAP_RSS_CLI: CLI, SNAP_REPO: '' } });
  if (r.error) throw new Error(`snap ${args.join(' ')}: ${r.error.message} (a hang?)`);
  const rss = fs.existsSync(rssFile) ? Number(fs.readFileSync(rssFile, 'utf8')) / (1024 * 1024) : NaN;
  return { code: r.status, stderr: r.stderr, stdout: r.stdout, rssMiB: rss };
}

describe('restore never writes outside its target', () => {
  it('crafted entries named "..", ".", "", with "/" or NUL, duplicated or unsorted are refused with SNAP_CORRUPT', async () => {
    const { base, repo } = await freshRepo();
    const [blob] = await putObjects(repo, 'blob', [{ raw: Buffer.from('escaped!') }]);
    const evil = [
      ['..'], ['.'], [''], ['a/b'], ['../../escaped'], ['/etc/escaped'], ['a\0b'],
      ['x', 'x'], ['b', 'a'],
    ];
    const snaps: [string, string][] = [];
    for (const names of evil) {
      const inner = (await putObjects(repo, 'tree', [{ raw: treeBytes([fileNode('escaped', [blob!], 8)]) }]))[0]!;
      const entries = names.map((n, i) => (i === 0 ? dirNode(n, inner) : fileNode(n, [blob!], 8)));
      const [root] = await putObjects(repo, 'tree', [{ raw: treeBytes(entries) }]);
      snaps.push([`entries ${JSON.stringify(names)}`, await putSnapshot(repo, root!, 'evil')]);
    }
    await cliOk(['--repo', repo, 'index', 'rebuild']);
    for (const [what, id] of snaps) {
      const sandbox = path.join(base, `sandbox-${id.slice(0, 8)}`);
      const target = path.join(sandbox, 'a', 'b', 'target');
      fs.mkdirSync(target, { recursive: true });
      const r = await cli(['--repo', repo, '--json', 'restore', id, target]);
      expect(r.code, `${what}\n${r.stderr}`).not.toBe(0);
      expect(r.stderr, what).toMatch(/SNAP_CORRUPT/);
      expect(r.stderr, what).not.toMatch(/SNAP_INTERNAL/);
      expect(listAll(sandbox), `${what}: nothing written`).toEqual(['a', 'a/b', 'a/b/target']);
      if (LONG || what.length % 3 === 0) {
        const ls = await cli(['--repo', repo, 'ls', id, '/']);
        expect(ls.code, what).toBe(1);
        expect(ls.stderr, what).toMatch(/\[SNAP_CORRUPT\]/);
      }
    }
    expect(fs.existsSync(path.join(base, 'escaped'))).toBe(false);
  });

  it('a planted symlink on the way to a restored file is not followed', async () => {
    const base = tmpDir();
    const src = path.join(base, 'src');
    fs.mkdirSync(path.join(src, 'dir'), { recursive: true });
    fs.writeFileSync(path.join(src, 'dir', 'file'), 'payload');
    fs.writeFileSync(path.join(src, 'top'), 'top');
    const repo = path.join(base, 'repo');
    await cliOk(['--repo', repo, 'init']);
    await cliOk(['--repo', repo, 'create', src]);
    const outside = path.join(base, 'outside');
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'top'), 'victim');
    for (const plant of ['first component', 'source dir', 'inner dir', 'file', 'file, --overwrite always'] as const) {
      const target = path.join(base, `target-${plant.replace(/\W+/g, '-')}`);
      const at = restoredAt(target, src);
      if (plant === 'first component') {
        fs.mkdirSync(target);
        fs.symlinkSync(outside, path.join(target, src.split('/')[1]!));
      } else if (plant === 'source dir') {
        fs.mkdirSync(path.dirname(at), { recursive: true });
        fs.symlinkSync(outside, at);
      } else if (plant === 'inner dir') {
        fs.mkdirSync(at, { recursive: true });
        fs.symlinkSync(outside, path.join(at, 'dir'));
      } else {
        fs.mkdirSync(at, { recursive: true });
        fs.symlinkSync(path.join(outside, 'top'), path.join(at, 'top'));
      }
      const args = ['--repo', repo, 'restore', 'latest', target, ...(plant === 'file, --overwrite always' ? ['--overwrite', 'always'] : [])];
      const r = await cli(args);
      expect(r.stderr, plant).not.toMatch(/SNAP_INTERNAL/);
      expect(listAll(outside), `${plant}: nothing written outside`).toEqual(['top']);
      expect(fs.readFileSync(path.join(outside, 'top'), 'utf8'), `${plant}: victim untouched`).toBe('victim');
      if (plant === 'file, --overwrite always') {
        expect(r.code, r.stderr).toBe(0);
        // The link itself was replaced by the restored file.
        expect(fs.lstatSync(path.join(at, 'top')).isFile(), plant).toBe(true);
        expect(fs.readFileSync(path.join(at, 'top'), 'utf8')).toBe('top');
      } else {
        expect(r.code, `${plant}\n${r.stderr}`).toBe(3);
      }
    }
  });

  it('a symlink restored by one snapshot is not followed by the next restore into the same target', async () => {
    const base = tmpDir();
    const src = path.join(base, 'src');
    const outside = path.join(base, 'outside');
    fs.mkdirSync(src);
    fs.mkdirSync(outside);
    fs.symlinkSync(outside, path.join(src, 'd'));
    const repo = path.join(base, 'repo');
    await cliOk(['--repo', repo, 'init']);
    await cliOk(['--repo', repo, 'create', '--tag', 'link', src]);
    fs.rmSync(path.join(src, 'd'));
    fs.mkdirSync(path.join(src, 'd'));
    fs.writeFileSync(path.join(src, 'd', 'pwned'), 'x');
    await cliOk(['--repo', repo, 'create', '--tag', 'dir', src]);
    const target = path.join(base, 'target');
    await cliOk(['--repo', repo, 'restore', '--tag', 'link', 'latest', target]);
    for (const policy of ['never', 'if-changed', 'always']) {
      const r = await cli(['--repo', repo, 'restore', '--tag', 'dir', '--overwrite', policy, 'latest', target]);
      expect(r.stderr).not.toMatch(/SNAP_INTERNAL/);
      expect(listAll(outside), `--overwrite ${policy}`).toEqual([]);
    }
  });
});

describe('crafted repository input', () => {
  const u64 = (major: number, n: bigint): Buffer => {
    const b = Buffer.alloc(9);
    b[0] = (major << 5) | 27;
    b.writeBigUInt64BE(n, 1);
    return b;
  };
  const head = (entriesValue: Buffer): Buffer => Buffer.concat([Buffer.from([0xa2, 0x61, 0x76, 0x01, 0x67]), Buffer.from('entries'), entriesValue]);
  const nameOnly = (nameValue: Buffer): Buffer => head(Buffer.concat([Buffer.from([0x81, 0xa1, 0x64]), Buffer.from('name'), nameValue]));
  const deep = (n: number): Buffer => Buffer.concat([Buffer.alloc(n, 0x81), Buffer.from([0x00])]);
  const crafted: [string, Buffer][] = [
    ['a byte string declaring 2^62 bytes', nameOnly(u64(2, 1n << 62n))],
    ['an array declaring 2^40 entries', head(u64(4, 1n << 40n))],
    ['an array declaring 2^32-1 entries', head(Buffer.from([0x9a, 0xff, 0xff, 0xff, 0xff]))],
    ['a map declaring 2^40 pairs', head(Buffer.concat([Buffer.from([0x81]), u64(5, 1n << 40n)]))],
    ['a text string declaring 2^62 bytes', head(u64(3, 1n << 62n))],
    ['100,000 nested arrays', head(deep(100_000))],
    ['1,000,000 nested arrays', head(deep(1_000_000))],
    ['100,000 nested maps', head(Buffer.concat([Buffer.alloc(100_000 * 2, 0).fill(Buffer.from([0xa1, 0x00])), Buffer.from([0x00])]))],
    ['100,000 nested tags', head(Buffer.concat([Buffer.alloc(100_000, 0xc6), Buffer.from([0x00])]))],
    ['unterminated indefinite arrays', head(Buffer.alloc(1000, 0x9f))],
    ['an array that contains itself (tags 28/29)', head(Buffer.from('d81c81d81d00', 'hex'))],
    ['a bignum of 1 MB', nameOnly(Buffer.concat([Buffer.from([0xc2, 0x5a, 0x00, 0x10, 0x00, 0x00]), Buffer.alloc(1 << 20, 0xff)]))],
    ['entries of the wrong type', encodeCbor({ v: 1, entries: 'no' })],
    ['a version of the wrong type', encodeCbor({ v: '1', entries: [] })],
    ['a negative mode', treeBytes([{ ...fileNode('f', [], 0), mode: -1 }])],
    ['an mtime of one element', treeBytes([{ ...fileNode('f', [], 0), mtime: [1] }])],
    ['a chunk id of 5 bytes', treeBytes([fileNode('f', [Buffer.alloc(5)], 0)])],
    ['a dir without a tree', treeBytes([{ ...dirNode('d', Buffer.alloc(32)), tree: undefined }])],
    ['an unknown entry type', treeBytes([{ ...fileNode('f', [], 0), type: 'door' }])],
    ['a Map instead of a map (tag 259)', Buffer.from('d90103a0', 'hex')],
    ['not CBOR at all', Buffer.from('\xff\xff\xff\xff garbage', 'latin1')],
    ['empty', Buffer.alloc(0)],
  ];

  seededIt('crafted trees give SNAP_CORRUPT quickly and in bounded memory (ls, restore, check)', async (rng: Rng) => {
    const { base, repo } = await freshRepo();
    const ids = await putObjects(repo, 'tree', crafted.map(([, raw]) => ({ raw })));
    const snaps: [string, string][] = [];
    for (let i = 0; i < crafted.length; i++) snaps.push([crafted[i]![0], await putSnapshot(repo, ids[i]!, `c${i}`)]);
    await cliOk(['--repo', repo, 'index', 'rebuild']);
    // Every case in-process (fast); a seeded sample through the CLI, which also bounds memory.
    const { Repository } = await import('../../src/repo/repository.js');
    const lib = await Repository.open(repo, { host: currentHost(), sink: {} });
    try {
      for (const [what, id] of snaps) {
        const snap = (await lib.listSnapshots()).find((s) => s.id === id)!;
        await expect(lib.readTree(snap.tree), what).rejects.toMatchObject({ code: 'SNAP_CORRUPT' });
      }
    } finally {
      await lib.close();
    }
    const sample = LONG ? snaps : rng.shuffle([...snaps]).slice(0, 6);
    for (const [i, [what, id]] of sample.entries()) {
      if (LONG || i % 2 === 0) {
        const ls = await cliRss(['--repo', repo, 'ls', '-R', id, '/']);
        expect(ls.code, `${what}: ls\n${ls.stderr}`).toBe(1);
        expect(ls.stderr, `${what}: ls`).toMatch(/\[SNAP_CORRUPT\]/);
        expect(ls.rssMiB, `${what}: ls memory (MiB)`).toBeLessThan(400);
      }
      const target = path.join(base, 'target');
      const r = await cliRss(['--repo', repo, '--json', 'restore', id, target]);
      expect(r.code, `${what}: restore\n${r.stderr}`).toBe(3);
      expect(r.stderr, `${what}: restore`).toMatch(/SNAP_CORRUPT/);
      expect(r.stderr).not.toMatch(/SNAP_INTERNAL/);
      expect(r.rssMiB, `${what}: restore memory (MiB)`).toBeLessThan(400);
      fs.rmSync(target, { recursive: true, force: true });
    }
    const c = await cliRss(['--repo', repo, '--json', 'check'], 120_000);
    expect(c.code, c.stderr).toBe(1);
    expect(c.stderr).not.toMatch(/SNAP_INTERNAL/);
    const report = JSON.parse(c.stdout) as { affected: { snapshot: string }[] };
    expect(new Set(report.affected.map((a) => a.snapshot))).toEqual(new Set(snaps.map(([, id]) => id)));
  });

  it('a deflate bomb (claims 100 bytes, inflates to 64 MiB) is refused without inflating it', async () => {
    const { base, repo } = await freshRepo();
    const zlib = await import('node:zlib');
    const bomb = zlib.deflateRawSync(Buffer.alloc(64 << 20));
    const fake = Buffer.alloc(100, 1);
    const [blob] = await putObjects(repo, 'blob', [{ raw: fake, stored: bomb, codec: 1, rawLength: 100 }]);
    const [root] = await putObjects(repo, 'tree', [{ raw: treeBytes([fileNode('bomb', [blob!], 100), fileNode('fine', [], 0)]) }]);
    const id = await putSnapshot(repo, root!, 'bomb');
    await cliOk(['--repo', repo, 'index', 'rebuild']);
    const target = path.join(base, 'target');
    const r = await cliRss(['--repo', repo, '--json', 'restore', id, target]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/SNAP_CORRUPT/);
    expect(r.rssMiB).toBeLessThan(300);
    expect(JSON.parse(r.stdout).damaged).toEqual([path.join(target, 'bomb')]);
    expect(fs.existsSync(path.join(target, 'fine'))).toBe(true);
  });

  it('crafted snapshot records and pack headers: listed as unreadable, never a crash', async () => {
    const { base, repo } = await freshRepo();
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f'), 'good');
    await cliOk(['--repo', repo, 'create', src]);
    const records: Buffer[] = [
      encodeCbor({ v: 1, time: 'not a date', hostname: 'h', username: 'u', paths: [], tags: [], tree: Buffer.alloc(32), program: 'p', summary: {} }),
      encodeCbor({ v: 1, time: new Date().toISOString(), hostname: 5, username: 'u', paths: [], tags: [], tree: Buffer.alloc(32), program: 'p', summary: {} }),
      encodeCbor({ v: 1, time: new Date().toISOString(), hostname: 'h', username: 'u', paths: [1], tags: [], tree: Buffer.alloc(31), program: 'p', summary: {} }),
      encodeCbor({ v: 2 }),
      Buffer.concat([Buffer.from([0xa1, 0x61, 0x76]), Buffer.alloc(200_000, 0x81), Buffer.from([0x00])]),
      Buffer.concat([Buffer.from([0xa1, 0x61, 0x76]), u64(2, 1n << 62n)]),
      Buffer.from('d81c81d81d00', 'hex'),
      Buffer.from('garbage'),
    ];
    const backend = new LocalBackend(repo);
    for (const rec of records) await backend.put(`snapshots/${sha(rec).toString('hex')}`, rec);
    // A record whose name is not its hash.
    await backend.put(`snapshots/${'ab'.repeat(32)}`, encodeCbor({ v: 1 }));
    // Pack headers: an impossible header length; an entry past the data; a huge declared entry count.
    const trailer = (hlen: number): Buffer => {
      const t = Buffer.alloc(12);
      t.writeUInt32LE(hlen, 0);
      Buffer.from('SNAPPK01').copy(t, 4);
      return t;
    };
    const packs = [
      Buffer.concat([Buffer.alloc(10), trailer(60 * 1024 * 1024)]),
      (() => {
        const h = encodeCbor({ v: 1, entries: [[0, Buffer.alloc(32, 1), 0, 1_000_000, 10, 0]] });
        return Buffer.concat([Buffer.alloc(10), h, trailer(h.length)]);
      })(),
      (() => {
        const h = Buffer.concat([Buffer.from([0xa2, 0x61, 0x76, 0x01, 0x67]), Buffer.from('entries'), u64(4, 1n << 40n)]);
        return Buffer.concat([h, trailer(h.length)]);
      })(),
    ];
    for (const p of packs) {
      const id = sha(p).toString('hex');
      await backend.put(packName(id), p);
    }
    const rb = await cliRss(['--repo', repo, 'index', 'rebuild']);
    expect(rb.code, rb.stderr).toBe(1); // problems found, said
    expect(rb.stderr).not.toMatch(/SNAP_INTERNAL/);
    expect(rb.rssMiB).toBeLessThan(300);
    const list = await cliRss(['--repo', repo, '--json', 'list']);
    expect(list.code, list.stderr).toBe(0);
    const listed = JSON.parse(list.stdout) as { id: string }[];
    expect(listed).toHaveLength(1);
    await restoreAndCompare(repo, listed[0]!.id, src, manifest(src), 'the good snapshot among crafted ones');
    const c = await cli(['--repo', repo, 'check']);
    expect(c.code, c.stdout + c.stderr).toBe(1);
    expect(c.stderr).not.toMatch(/SNAP_INTERNAL/);
  });
});

describe('owner-only repository files', () => {
  seededIt('every file and folder snap creates in a repository is owner-only', async (rng) => {
    const base = tmpDir();
    const src = path.join(base, 'src');
    genTree(rng, src, { files: 30, dirs: 4, maxFile: 200_000 });
    const repo = path.join(base, 'repo');
    await cliOk(['--repo', repo, 'init']);
    await cliOk(['--repo', repo, 'create', src]);
    expect(notOwnerOnly(repo), 'after init and create').toEqual([]);
    await cliOk(['--repo', repo, 'index', 'rebuild']);
    fs.rmSync(path.join(repo, 'index'), { recursive: true });
    await cliOk(['--repo', repo, 'list']);
    expect(notOwnerOnly(repo), 'after an index rebuild').toEqual([]);
    await cliOk(['--repo', repo, 'create', src]);
    const [first] = await listSnapshots(repo);
    await cliOk(['--repo', repo, 'forget', first!.id]);
    await cliOk(['--repo', repo, 'gc']);
    expect(notOwnerOnly(repo), 'after forget and gc').toEqual([]);
  });
});
