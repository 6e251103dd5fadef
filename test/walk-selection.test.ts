// The one snapshot walker (ops/tree/walk.ts walkEntries, expandTree) and the one path-selection
// type (ops/tree/selection.ts PathSelection), on trees kept in memory.
import { describe, expect, it } from 'vitest';
import { sha256 } from '../src/core/ids.js';
import type { Node } from '../src/model/node.js';
import { type Tree, encodeTree, openTree } from '../src/model/tree.js';
import { PathSelection } from '../src/ops/tree/selection.js';
import { expandTree, foldTrees, walkEntries } from '../src/ops/tree/walk.js';
import { RestoreWalk } from '../src/ops/restore/output.js';

const meta = { mode: 0o755, uid: 0, gid: 0, user: '', group: '', mtime: { sec: 0, nsec: 0 }, size: 0 };
const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const parts = (p: string): Buffer[] => p.split('/').filter(Boolean).map(b);

/** A repository of trees in memory, counting reads. */
function store(): { repo: { readTree(id: Buffer): Promise<Tree>; reads: number }; put(nodes: Node[]): Buffer } {
  const trees = new Map<string, Tree>();
  const repo = {
    reads: 0,
    async readTree(id: Buffer): Promise<Tree> {
      this.reads++;
      const t = trees.get(id.toString('hex'));
      if (!t) throw new Error('no such tree');
      return t;
    },
  };
  const put = (nodes: Node[]): Buffer => {
    const bytes = encodeTree(nodes.slice().sort((x, y) => Buffer.compare(x.name, y.name)));
    const id = sha256(bytes);
    trees.set(id.toString('hex'), openTree(bytes, 'tree'));
    return id;
  };
  return { repo, put };
}

const file = (name: string | Buffer, links?: number): Node =>
  ({ ...meta, name: typeof name === 'string' ? b(name) : name, type: 'file', chunks: [], ...(links ? { inode: { dev: 1, ino: 7, links } } : {}) }) as Node;
const dir = (name: string, tree: Buffer): Node => ({ ...meta, name: b(name), type: 'dir', tree }) as Node;

/**
 *   /a/x/f1   /a/x/f2   /a/y/g   /a/top   /b/h   /c (a file)   /\xff (a file, not UTF-8)
 */
function sample(): { repo: { readTree(id: Buffer): Promise<Tree>; reads: number }; root: Buffer } {
  const { repo, put } = store();
  const x = put([file('f1'), file('f2')]);
  const y = put([file('g')]);
  const a = put([dir('x', x), dir('y', y), file('top')]);
  const bt = put([file('h')]);
  const root = put([dir('a', a), dir('b', bt), file('c'), file(Buffer.from([0xff]))]);
  return { repo, root };
}

async function walk(sel?: PathSelection, base?: Buffer): Promise<string[]> {
  const { repo, root } = sample();
  const out: string[] = [];
  for await (const e of walkEntries(repo, root, { selection: sel, base })) out.push(`${e.path.toString('latin1')}${e.node.type === 'dir' ? '/' : ''} ${e.scope}`);
  return out;
}

describe('PathSelection', () => {
  it('selects a named path and everything below it; the directories leading to it are partial; the rest is not selected', () => {
    const s = PathSelection.of([parts('a/x'), parts('b')]);
    expect(s.named).toBe(true);
    expect(s.everything).toBe(false);
    expect(s.scope([])).toBe('partial');
    expect(s.scope(parts('a'))).toBe('partial');
    expect(s.scope(parts('a/x'))).toBe('all');
    expect(s.scope(parts('a/x/f1'))).toBe('all');
    expect(s.scope(parts('a/y'))).toBe('none');
    expect(s.scope(parts('a/xx'))).toBe('none');
    expect(s.scope(parts('b/h'))).toBe('all');
    expect(s.scope(parts('c'))).toBe('none');
    expect(s.covers(parts('a'))).toBe(false);
    expect(s.covers(parts('a/x'))).toBe(true);
    expect(s.covers(parts('b/h/z'))).toBe(true);
  });

  it('nothing named, or the root named, is everything; covers is true only below named paths', () => {
    expect(PathSelection.ALL.everything).toBe(true);
    expect(PathSelection.ALL.named).toBe(false);
    expect(PathSelection.ALL.scope(parts('any/where'))).toBe('all');
    expect(PathSelection.ALL.covers([])).toBe(false);
    expect(PathSelection.of([]).everything).toBe(true);
    const root = PathSelection.of([[], parts('a')]);
    expect(root.everything).toBe(true);
    expect(root.named).toBe(true);
    expect(root.scope(parts('c'))).toBe('all');
    expect(root.covers([])).toBe(true);
  });

  it('compares names as bytes (a name that is not UTF-8 selects only itself)', () => {
    const s = PathSelection.of([[Buffer.from([0xff])]]);
    expect(s.scope([Buffer.from([0xff])])).toBe('all');
    expect(s.scope([Buffer.from([0xfe])])).toBe('none');
    expect(s.scope([Buffer.from('\ufffd')])).toBe('none');
  });
});

describe('walkEntries', () => {
  it('walks everything depth first, a directory before its contents, in name order; paths join onto base', async () => {
    expect(await walk(undefined, b('/'))).toEqual([
      '/a/ all', '/a/top all', '/a/x/ all', '/a/x/f1 all', '/a/x/f2 all', '/a/y/ all', '/a/y/g all', '/b/ all', '/b/h all', '/c all', '/\xff all',
    ]);
    expect((await walk(undefined, b('')))[1]).toBe('a/top all');
    expect((await walk(undefined, b('/t')))[1]).toBe('/t/a/top all');
  });

  it('with a selection: the directories leading to a named path (partial, without their other entries), the named paths and all below them', async () => {
    expect(await walk(PathSelection.of([parts('a/x'), parts('c')]))).toEqual(['a/ partial', 'a/x/ all', 'a/x/f1 all', 'a/x/f2 all', 'c all']);
    expect(await walk(PathSelection.of([parts('a/y/g')]))).toEqual(['a/ partial', 'a/y/ partial', 'a/y/g all']);
    expect(await walk(PathSelection.of([[]]))).toHaveLength(11);
    // A file on the way to a named path (the path names something below a file) is not met.
    expect(await walk(PathSelection.of([parts('c/z'), parts('b')]))).toEqual(['b/ all', 'b/h all']);
  });

  it('a directory whose descend the consumer sets to false is not entered; leave is told once per directory entered, after its contents', async () => {
    const { repo, root } = sample();
    const seen: string[] = [];
    const it = walkEntries(repo, root, { leave: () => seen.push('leave') });
    for await (const e of it) {
      seen.push(e.path.toString('latin1'));
      if (e.path.equals(b('a/x'))) e.descend = false;
    }
    expect(seen).toEqual(['a', 'a/top', 'a/x', 'a/y', 'a/y/g', 'leave', 'leave', 'b', 'b/h', 'leave', 'c', '\xff', 'leave']);
  });

  it('reads through the read hook, with the directory path; the descend option stops at directories', async () => {
    const { repo, root } = sample();
    const read: string[] = [];
    const out: string[] = [];
    const hook = (id: Buffer, at: Buffer): Promise<Tree> => {
      read.push(at.toString('latin1'));
      return repo.readTree(id);
    };
    for await (const e of walkEntries(repo, root, { base: b('/'), read: hook, descend: (n) => n.name.toString() !== 'a' })) out.push(e.path.toString('latin1'));
    expect(read).toEqual(['/', '/b']);
    expect(out).toEqual(['/a', '/b', '/b/h', '/c', '/\xff']);
  });

  it('walks 5,000 levels without recursion, and refuses a crafted DAG that expands past the limit', async () => {
    const { repo, put } = store();
    let t = put([file('f')]);
    for (let i = 0; i < 5000; i++) t = put([dir('d', t)]);
    let n = 0;
    for await (const _ of walkEntries(repo, t)) n++;
    expect(n).toBe(5001);
    const crafted = store();
    let c = crafted.put([file('f')]);
    for (let i = 0; i < 40; i++) c = crafted.put([dir('a', c), dir('b', c)]);
    const entries = async (): Promise<void> => {
      for await (const _ of walkEntries(crafted.repo, c)) void _;
    };
    await expect(entries()).rejects.toThrow(/expand to more than 4294967296 paths/);
  });
});

describe('expandTree', () => {
  it('counts what the walk meets, with the same selection, reading each distinct tree once', async () => {
    for (const sel of [undefined, PathSelection.of([parts('a/x'), parts('c')]), PathSelection.of([parts('a/y/g')])]) {
      const { repo, root } = sample();
      const x = await expandTree(repo, root, { selection: sel });
      expect(x.entries).toBe((await walk(sel)).length);
    }
    const { repo, put } = store();
    const id = (s: string): Buffer => sha256(b(s));
    const leaf = put([{ ...file('f', 2), chunks: [id('f1'), id('f2')] }, { ...file('g'), chunks: [id('g1')] }]);
    const root = put([dir('a', leaf), dir('b', leaf)]);
    const told: string[] = [];
    const x = await expandTree(repo, root, { onFile: (chunks) => void told.push(chunks.map((c) => c.toString('hex')).join('+')) });
    expect(x).toEqual({ entries: 6, inodes: 2 + 2 * 1.5 });
    expect(told).toEqual([`${id('f1').toString('hex')}+${id('f2').toString('hex')}`, id('g1').toString('hex')]); // the shared subtree is counted once
    expect(repo.reads).toBe(2);
  });
});

describe('RestoreWalk (the walk restore and export share)', () => {
  it('groups the names of an inode: the first registers, a later twin links to it, a name recorded differently does not; the group ends at its last name', async () => {
    const { repo, put } = store();
    const linked = (name: string, chunk: string, mode = 0o644): Node =>
      ({ ...meta, mode, name: b(name), type: 'file', size: 1, chunks: [sha256(b(chunk))], inode: { dev: 1, ino: 9, links: 4 } }) as Node;
    const sub = put([linked('l3', 'x'), linked('l4', 'x', 0o600)]);
    const root = put([linked('l1', 'x'), linked('l2', 'x'), dir('s', sub), file('plain'), { ...meta, name: b('sock'), type: 'socket' } as Node]);
    const walk = new RestoreWalk<string>(repo, root, { selection: undefined });
    const seen: string[] = [];
    for await (const it of walk.entries()) {
      const name = it.path.toString('latin1');
      if (!it.link) seen.push(name);
      else if (it.link.first) {
        it.link.register(`first:${name}`);
        seen.push(`${name} first`);
      } else seen.push(`${name} -> ${await it.link.group} same=${it.link.same} last=${it.link.last}`);
    }
    expect(seen).toEqual(['l1 first', 'l2 -> first:l1 same=true last=false', 'plain', 's', 's/l3 -> first:l1 same=true last=false', 's/l4 -> first:l1 same=false last=true', 'sock']);
    expect(walk.counts).toEqual({ dirs: 1, files: 3, links: 2, symlinks: 0, special: 0, sockets: 1 });
    expect(await walk.unfinished()).toEqual([]);
  });

  it('a group with names outside the selection is unfinished at the end, with what its first registered', async () => {
    const { repo, put } = store();
    const n = (name: string): Node => ({ ...meta, name: b(name), type: 'file', size: 0, chunks: [], inode: { dev: 2, ino: 3, links: 2 } }) as Node;
    const root = put([dir('a', put([n('x')])), dir('b', put([n('y')]))]);
    const walk = new RestoreWalk<string>(repo, root, { selection: PathSelection.of([parts('a')]) });
    for await (const it of walk.entries()) if (it.link?.first) it.link.register('x');
    expect(await walk.unfinished()).toEqual(['x']);
  });
});

describe('foldTrees', () => {
  it('hands each tree its subtrees\' results in order with its path; a memo that forgets and keys by path still folds right', async () => {
    const { repo, put } = store();
    const leaf = put([file('f')]);
    const root = put([dir('a', leaf), dir('b', leaf), file('z')]);
    /** Forgets everything at each set: results travel up in subs, not through the memo. */
    const forgetful = { map: new Map<string, string[]>(), get(k: string) { return this.map.get(k); }, set(k: string, v: string[]) { this.map = new Map([[k, v]]); } };
    const paths = await foldTrees<string[]>(root, forgetful, {
      read: (id) => repo.readTree(id),
      unreadable: () => [],
      key: (hex, path) => `${hex} ${path.toString()}`,
      finish: async (_id, _hex, nodes, subs, path) => {
        const out: string[] = [];
        let k = 0;
        for (const n of nodes) {
          out.push(`${path.toString()}/${n.name.toString()}`);
          if (n.type === 'dir') out.push(...subs[k++]!);
        }
        return out;
      },
    }, b('/r'));
    expect(paths).toEqual(['/r/a', '/r/a/f', '/r/b', '/r/b/f', '/r/z']);
    expect(repo.reads).toBe(3); // keyed by path: the shared leaf is folded once per place
  });
});
