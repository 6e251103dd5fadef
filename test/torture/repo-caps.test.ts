// Caps on everything a repository can claim (issue 20, items 6-8): object sizes, entries per tree,
// special files where regular files belong, absurd config values, locks from the future. Each case
// is a crafted repository; every command must refuse it with a clear SNAP_* error, quickly, in
// bounded memory (peak RSS of the CLI process measured) and without a stack trace.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../../src/backend/local.js';
import { encodeLock } from '../../src/repo/lock.js';
import { randomHex } from '../../src/core/ids.js';
import { MAX_TREE_ENTRIES } from '../../src/model/tree.js';
import { CLI, LONG, cleanupTmp, cli, cliOk } from './lib.js';
import {
  bigTreePieces, bigTreeSize, cliRss, namedTreePieces, dirNode, fileNode, freshRepo, noCrash, putObjects, putSnapshot, treeBytes, zerosId, zstdFrame, zstdZeros,
} from './crafted-lib.js';

afterAll(cleanupTmp);

const GiB = 1024 ** 3;
/** Peak RSS allowed to any command on a crafted repository (a plain `snap list` takes about 80 MiB). */
const RSS_BOUND_MIB = 300;

function expectRefused(r: { code: number | null; stderr: string; rssMiB: number }, code: RegExp, what: string): void {
  expect(r.code, `${what}\n${r.stderr}`).toBe(1);
  expect(r.stderr, what).toMatch(code);
  expect(noCrash(r.stderr), `${what}\n${r.stderr}`).toEqual([]);
  expect(r.rssMiB, `${what}: peak RSS (MiB)`).toBeLessThan(RSS_BOUND_MIB);
}

describe('object sizes a repository claims', () => {
  it('an object claiming 3 GiB (its id the real hash of 3 GiB of zeros, 100 KB stored) is damage, refused before any allocation', async () => {
    const { base, repo } = await freshRepo();
    const size = 3 * GiB;
    const frame = zstdZeros(size);
    expect(spawnSync('true').status).toBe(0);
    const [blob] = await putObjects(repo, 'blob', [{ id: zerosId(size), stored: frame, rawLength: size, codec: 2 }]);
    const [root] = await putObjects(repo, 'tree', [{ raw: treeBytes([dirNode('x', (await putObjects(repo, 'tree', [{ raw: treeBytes([fileNode('zeros', [blob!], size)]) }]))[0]!)]) }]);
    const id = await putSnapshot(repo, root!);
    await cliOk(['--repo', repo, 'index', 'rebuild']);
    // Its stored data: the reserve for a full disk (16 MiB of filler, src/repo/reserve.ts) is none of it.
    const du = spawnSync('du', ['-sk', '--exclude=reserve', repo], { encoding: 'utf8' });
    expect(fs.existsSync(path.join(repo, 'reserve')), 'init made the reserve').toBe(true);
    expect(Number(du.stdout.split('\t')[0]), 'the repository is small').toBeLessThan(1024);
    const runs: [string, string[]][] = [
      ['cat', ['cat', id, '/x/zeros']],
      ['restore', ['restore', id, path.join(base, 'target')]],
      ['export', ['export', id, path.join(base, 'out.tar')]],
    ];
    for (const [what, args] of runs) {
      const r = await cliRss(['--repo', repo, ...args]);
      // restore reports a damaged file as a warning and goes on (exit 3); the others stop (exit 1).
      expect(r.code, `${what}\n${r.stderr}`).toBe(what === 'restore' ? 3 : 1);
      expect(r.stderr, what).toMatch(/claims 3221225472 bytes/);
      expect(noCrash(r.stderr), `${what}\n${r.stderr}`).toEqual([]);
      expect(r.rssMiB, `${what}: peak RSS (MiB)`).toBeLessThan(RSS_BOUND_MIB);
    }
    for (const args of [['check'], ['check', '--read-data']]) {
      const r = await cliRss(['--repo', repo, ...args]);
      expect(r.code, `${args.join(' ')}\n${r.stderr}${r.stdout}`).toBe(1);
      expect(r.stdout + r.stderr).toMatch(/3221225472/);
      // Reported as damage with the file it affects, not a command that stops at the first claim.
      expect(r.stdout + r.stderr).toMatch(/\/x\/zeros/);
      expect(noCrash(r.stderr)).toEqual([]);
      expect(r.rssMiB, `${args.join(' ')}: peak RSS (MiB)`).toBeLessThan(RSS_BOUND_MIB);
    }
  }, 180_000);

  it('a tree of 6 million entries (a 5 MB repository) is refused for its size, not decoded into gigabytes', async () => {
    const { repo } = await freshRepo();
    const n = 6_000_000;
    const { frame, id: treeId } = await zstdFrame(bigTreeSize(n), bigTreePieces(n));
    expect(frame.length).toBeLessThan(8 * 1024 * 1024);
    await putObjects(repo, 'tree', [{ id: treeId, stored: frame, rawLength: bigTreeSize(n), codec: 2 }]);
    const [root] = await putObjects(repo, 'tree', [{ raw: treeBytes([dirNode('x', treeId)]) }]);
    const id = await putSnapshot(repo, root!);
    await cliOk(['--repo', repo, 'index', 'rebuild']);
    for (const args of [['ls', id, '/x'], ['ls', '-R', id, '/'], ['find', 'x*'], ['export', id, '-', '--format', 'tar']]) {
      const r = await cliRss(['--repo', repo, ...args]);
      expectRefused(r, /\[SNAP_CORRUPT\]/, args.join(' '));
    }
    const c = await cliRss(['--repo', repo, 'check']);
    expect(c.code, c.stdout + c.stderr).toBe(1);
    expect(c.stdout + c.stderr).toMatch(/more than any tree/);
    expect(c.rssMiB).toBeLessThan(RSS_BOUND_MIB);
  }, 300_000);

  it('a tree of 1.1 million entries within the byte limit is refused by its entry count before decoding', async () => {
    const { repo } = await freshRepo();
    const n = 1_100_000;
    const { frame, id: treeId } = await zstdFrame(bigTreeSize(n), bigTreePieces(n));
    await putObjects(repo, 'tree', [{ id: treeId, stored: frame, rawLength: bigTreeSize(n), codec: 2 }]);
    const [root] = await putObjects(repo, 'tree', [{ raw: treeBytes([dirNode('x', treeId)]) }]);
    const id = await putSnapshot(repo, root!);
    await cliOk(['--repo', repo, 'index', 'rebuild']);
    const r = await cliRss(['--repo', repo, 'ls', id, '/x']);
    expectRefused(r, /claims 1100000 entries.*\[SNAP_CORRUPT\]/s, 'ls');
  }, 300_000);
});

describe('a tree at the entry cap', () => {
  /**
   * Peak RSS allowed to the CLI walking one directory of 1,000,000 entries (81 MB of tree). Trees
   * are views over their bytes (src/model/tree.ts): the tree, 4 bytes per entry, and what the
   * command itself keeps. Before, each of these commands decoded the million entries into objects
   * and took 830-910 MiB (docs/performance.md, "Trees in memory").
   */
  const CAP_RSS_MIB = 400;

  it('a directory of 1,000,000 entries (the cap) is listed, checked, exported, rewritten and (SNAP_TORTURE=1) restored whole, each command under 400 MiB of peak RSS', async () => {
    const { base, repo } = await freshRepo();
    const n = MAX_TREE_ENTRIES;
    const { frame, id: treeId } = await zstdFrame(bigTreeSize(n), namedTreePieces(n));
    await putObjects(repo, 'tree', [{ id: treeId, stored: frame, rawLength: bigTreeSize(n), codec: 2 }]);
    const [root] = await putObjects(repo, 'tree', [{ raw: treeBytes([dirNode('x', treeId)]) }]);
    const id = await putSnapshot(repo, root!);
    await cliOk(['--repo', repo, 'index', 'rebuild']);
    const within = (r: { code: number | null; stderr: string; rssMiB: number }, what: string): void => {
      expect(r.code, `${what}\n${r.stderr}`).toBe(0);
      expect(noCrash(r.stderr), what).toEqual([]);
      console.info(`[torture] ${what} of a directory of ${n} entries: peak RSS ${r.rssMiB.toFixed(0)} MiB`);
      expect(r.rssMiB, `${what}: peak RSS (MiB)`).toBeLessThan(CAP_RSS_MIB);
    };
    const ls = await cliRss(['--repo', repo, 'ls', '-R', id, '/'], { timeoutMs: 600_000 });
    within(ls, 'ls -R');
    const lines = ls.stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(n + 1);
    expect(lines[1]).toBe('/x/f0000000');
    expect(lines[n]).toBe(`/x/f${String(n - 1).padStart(7, '0')}`);
    const look = await cliRss(['--repo', repo, 'ls', '-l', id, `/x/f0765432`]);
    within(look, 'ls of one entry');
    expect(look.stdout).toMatch(/f0765432\n$/);
    within(await cliRss(['--repo', repo, 'check', '--read-data'], { timeoutMs: 600_000 }), 'check --read-data');
    const tar = path.join(base, 'x.tar');
    within(await cliRss(['--repo', repo, 'export', id, tar], { timeoutMs: 600_000 }), 'export');
    const names = spawnSync('tar', ['-tf', tar], { maxBuffer: 64 << 20 }).stdout.toString().split('\n').filter((l) => l.startsWith('x/f'));
    expect(names).toHaveLength(n);
    fs.rmSync(tar);
    // rewrite (and repair, which shares its encoder: model/tree.ts encodeWithSubtrees) writes the
    // new tree entry by entry, never the million entries as objects.
    const rw = await cliRss(['--repo', repo, '--json', 'rewrite', id, '--exclude', '/x/f0000007'], { timeoutMs: 600_000 });
    within(rw, 'rewrite');
    const doc = JSON.parse(rw.stdout) as { snapshots: { replacement: string; removed: { path: string }[] }[] };
    expect(doc.snapshots[0]!.removed.map((e) => e.path)).toEqual(['/x/f0000007']);
    const replacement = doc.snapshots[0]!.replacement;
    expect((await cliRss(['--repo', repo, 'ls', replacement, '/x/f0000007'])).code).not.toBe(0);
    expect((await cliRss(['--repo', repo, 'ls', replacement, '/x/f0000008'])).stdout).toMatch(/f0000008\n$/);
    // A million files written: about 90 s on a quiet machine, 20 minutes on a busy one; long mode only.
    if (!LONG) return;
    const target = path.join(base, 'target');
    within(await cliRss(['--repo', repo, 'restore', id, target], { timeoutMs: 1_500_000 }), 'restore');
    const count = spawnSync('sh', ['-c', 'find "$1" -type f | wc -l', 'sh', path.join(target, 'x')], { encoding: 'utf8' });
    expect(Number(count.stdout.trim())).toBe(n);
    fs.rmSync(target, { recursive: true, force: true });
  }, 1_800_000);
});

describe('special files where regular files belong', () => {
  async function smallBackup(): Promise<{ base: string; repo: string; id: string }> {
    const { base, repo } = await freshRepo();
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f'), 'hello world\n'.repeat(1000));
    await cliOk(['--repo', repo, 'create', src]);
    const list = JSON.parse((await cliOk(['--repo', repo, 'list', '--json'])).stdout) as { id: string }[];
    return { base, repo, id: list[0]!.id };
  }

  it('config a FIFO, a symlink to /dev/zero, or 100 MB long: SNAP_BAD_CONFIG at once', async () => {
    for (const kind of ['fifo', 'zero', 'huge'] as const) {
      const { repo } = await freshRepo();
      const config = path.join(repo, 'config');
      fs.rmSync(config);
      if (kind === 'fifo') expect(spawnSync('mkfifo', [config]).status).toBe(0);
      else if (kind === 'zero') fs.symlinkSync('/dev/zero', config);
      else fs.writeFileSync(config, Buffer.alloc(100 * 1024 * 1024, 0x20));
      for (const cmd of [['list'], ['check']]) {
        const r = await cliRss(['--repo', repo, ...cmd], { timeoutMs: 20_000 });
        expectRefused(r, /\[SNAP_BAD_CONFIG\]/, `${kind}: ${cmd.join(' ')}`);
      }
    }
  }, 120_000);

  it('a pack made a FIFO (or a symlink): cat, restore, export and check refuse at once', async () => {
    for (const kind of ['fifo', 'symlink'] as const) {
      const { base, repo, id } = await smallBackup();
      const packs = (await (async () => {
        const out: string[] = [];
        for await (const b of new LocalBackend(repo).list('data/')) out.push(b.name);
        return out;
      })());
      for (const p of packs) {
        const file = path.join(repo, p);
        fs.rmSync(file);
        if (kind === 'fifo') expect(spawnSync('mkfifo', [file]).status).toBe(0);
        else fs.symlinkSync('/dev/zero', file);
      }
      const src = path.join(base, 'src');
      const runs: string[][] = [
        ['cat', id, `${src}/f`],
        ['restore', id, path.join(base, 'target')],
        ['export', id, path.join(base, 'out.tar')],
      ];
      for (const args of runs) {
        const r = await cliRss(['--repo', repo, ...args], { timeoutMs: 30_000 });
        expect(r.code, `${kind}: ${args[0]}\n${r.stderr}`).not.toBe(0);
        expect(r.code, `${kind}: ${args[0]}`).toBe(args[0] === 'restore' ? 3 : 1);
        expect(r.stderr, `${kind}: ${args[0]}`).toMatch(kind === 'fifo' ? /is a FIFO, not a regular file/ : /is a symbolic link, not a regular file/);
        expect(noCrash(r.stderr), r.stderr).toEqual([]);
      }
      const c = await cliRss(['--repo', repo, 'check', '--read-data'], { timeoutMs: 30_000 });
      expect(c.code, c.stdout + c.stderr).toBe(1);
      expect(noCrash(c.stderr), c.stderr).toEqual([]);
    }
  }, 180_000);

  it('export ends with 130 on SIGTERM while blocked writing to a pipe nobody reads', async () => {
    const { base, repo } = await freshRepo();
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'big'), randomBytes(8 * 1024 * 1024));
    await cliOk(['--repo', repo, 'create', src]);
    let pid = 0;
    const run = cliRss(['--repo', repo, 'export', 'latest', '-', '--format', 'tar'], { timeoutMs: 30_000, holdStdout: true, onStart: (p) => (pid = p) });
    await new Promise((r) => setTimeout(r, 4000));
    process.kill(pid, 'SIGTERM');
    const r = await run;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/SNAP_INTERRUPTED/);
    expect(noCrash(r.stderr), r.stderr).toEqual([]);
  }, 60_000);
});

describe('config values', () => {
  const cases: [string, (c: Record<string, any>) => void, RegExp][] = [
    ['deflate level 100', (c) => (c.compression = { codec: 'deflate', level: 100 }), /compression\.level/],
    ['zstd level 1000', (c) => (c.compression = { codec: 'zstd', level: 1000 }), /compression\.level/],
    ['pack size 2^31', (c) => (c.packSize = 2 ** 31), /packSize/],
    ['pack size 2^40', (c) => (c.packSize = 2 ** 40), /packSize/],
    ['pack size 0.5', (c) => (c.packSize = 0.5), /packSize/],
    ['chunker max 2^40', (c) => (c.chunker.maxSize = 2 ** 40), /chunker/],
  ];
  it.each(cases)('%s: SNAP_BAD_CONFIG naming the field, for reading and for backing up', async (what, change, field) => {
    const { base, repo } = await freshRepo();
    const file = path.join(repo, 'config');
    const c = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>;
    change(c);
    fs.writeFileSync(file, JSON.stringify(c));
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f'), 'x');
    for (const args of [['list'], ['create', src]]) {
      const r = await cliRss(['--repo', repo, ...args]);
      expectRefused(r, /\[SNAP_BAD_CONFIG\]/, `${what}: ${args[0]}`);
      expect(r.stderr).toMatch(field);
    }
  }, 60_000);
});

describe('locks', () => {
  function plant(repo: string, refreshedInMs: number): string {
    const now = Date.now();
    const name = randomHex(32);
    fs.writeFileSync(path.join(repo, 'locks', name), encodeLock({
      host: 'elsewhere.example', pid: 4242, time: new Date(now).toISOString(), refreshed: new Date(now + refreshedInMs).toISOString(), exclusive: true, command: 'gc',
    }));
    return name;
  }

  it('a lock from another host "refreshed" a year ahead does not lock the repository for ever', async () => {
    const { repo } = await freshRepo();
    fs.mkdirSync(path.join(repo, 'locks'), { recursive: true });
    const name = plant(repo, 365 * 24 * 3600_000);
    const r = await cli(['--repo', repo, '--lock-wait', '2s', 'list']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/removed a stale lock.*in the future/);
    expect(fs.existsSync(path.join(repo, 'locks', name))).toBe(false);
  });

  it('a live lock of another host (refreshed 5 min ahead: clocks may disagree) is respected; the hint says what is true', async () => {
    const { repo } = await freshRepo();
    fs.mkdirSync(path.join(repo, 'locks'), { recursive: true });
    const name = plant(repo, 5 * 60_000);
    const r = await cli(['--repo', repo, '--lock-wait', '1s', 'list']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/\[SNAP_LOCKED\]/);
    expect(r.stderr).not.toMatch(/removed automatically/);
    expect(r.stderr).toContain(`locks/${name}`);
    expect(r.stderr).toMatch(/not been refreshed for 30 min/);
  });
});

describe('what snap writes outside the repository', () => {
  it('an export made under umask 000 from an owner-only repository is owner-only', async () => {
    const { base, repo } = await freshRepo();
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'secret'), 'the password is swordfish\n');
    await cliOk(['--repo', repo, 'create', src]);
    expect(fs.statSync(repo).mode & 0o777).toBe(0o700);
    for (const name of ['out.tar', 'out.zip', 'out.tar.gz']) {
      const out = path.join(base, name);
      const r = spawnSync('sh', ['-c', 'umask 000; exec "$0" "$@"', process.execPath, CLI, '--repo', repo, 'export', 'latest', out], { encoding: 'utf8', env: { ...process.env, SNAP_REPO: '' } });
      expect(r.status, r.stderr).toBe(0);
      expect((fs.statSync(out).mode & 0o777).toString(8), name).toBe('600');
    }
  });
});

describe('text from a repository is never printed raw', () => {
  it('names, link targets, owner names, host names and tags with ESC, newlines and C1 controls are escaped by ls, find, diff, list, forget and lock messages', async () => {
    const { repo } = await freshRepo();
    const evil = '\x1b]0;pwned\x07\x1b[2J\r\nsnap: fake line\x9b31m';
    const [blob] = await putObjects(repo, 'blob', [{ raw: Buffer.from('x') }]);
    const file = { ...fileNode(`name${evil}`, [blob!], 1), user: `u${evil}`, group: `g${evil}` };
    const link = { name: Buffer.from('link'), type: 'symlink', mode: 0o777, uid: 0, gid: 0, user: '', group: '', mtime: [1, 0], size: 0, target: Buffer.from(`t${evil}`) };
    const [inner] = await putObjects(repo, 'tree', [{ raw: treeBytes([link, file]) }]);
    const [root] = await putObjects(repo, 'tree', [{ raw: treeBytes([dirNode('x', inner!)]) }]);
    const [empty] = await putObjects(repo, 'tree', [{ raw: treeBytes([]) }]);
    const a = await putSnapshot(repo, empty!, { tag: `tag${evil}`, hostname: `host${evil}` });
    await new Promise((r) => setTimeout(r, 5));
    const b = await putSnapshot(repo, root!, { tag: `tag${evil}`, hostname: `host${evil}` });
    await cliOk(['--repo', repo, 'index', 'rebuild']);
    const runs: string[][] = [
      ['ls', '-l', b, '/x'], ['ls', '-R', b, '/'], ['find', 'name*'], ['diff', a, b], ['list'], ['forget', '--keep-last', '1', '--dry-run'], ['history', '/x/link'],
    ];
    for (const args of runs) {
      const r = await cli(['--repo', repo, '--lock-wait', '1s', ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stdout.length, args.join(' ')).toBeGreaterThan(0);
      for (const [stream, text] of [['stdout', r.stdout], ['stderr', r.stderr]] as const) {
        expect(text, `${args.join(' ')} ${stream}`).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
        expect(text, `${args.join(' ')} ${stream}`).not.toMatch(/^snap: fake line/m);
      }
    }
    // The lock holder's host and command are shown escaped in the SNAP_LOCKED message.
    fs.writeFileSync(path.join(repo, 'locks', randomHex(32)), encodeLock({
      host: `h${evil}`, pid: 1, time: new Date().toISOString(), refreshed: new Date().toISOString(), exclusive: true, command: `c${evil}`,
    }));
    const locked = await cli(['--repo', repo, '--lock-wait', '1s', 'list']);
    expect(locked.stderr).toMatch(/h\\x1b\]0;pwned/);
  });
});
