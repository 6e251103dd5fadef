// Units of the hardening against crafted repositories (issue 20); the end-to-end reproductions are
// in test/torture/{repo-caps,deep-trees,foreign-repo}.test.ts.
import { describe, expect, it } from 'vitest';
import { terminalSafe } from '../src/core/bytes.js';
import { isSnapError } from '../src/core/errors.js';
import { sha256 } from '../src/core/ids.js';
import { encodeCbor, topLevelArrayLength } from '../src/model/cbor.js';
import { configProblem } from '../src/model/config.js';
import type { Node } from '../src/model/node.js';
import { type Tree, decodeTree, encodeTree, MAX_TREE_ENTRIES, openTree } from '../src/model/tree.js';
import { staleReason } from '../src/repo/lock.js';
import { checkObjectClaim, objectLimits } from '../src/store/limits.js';
import { countPaths, ExpansionGuard, foldTrees } from '../src/ops/tree/walk.js';

describe('topLevelArrayLength', () => {
  it('reads the count of a keyed array in any map encoding and key order, without decoding', () => {
    const entries = [1, 2, 3];
    expect(topLevelArrayLength(encodeCbor({ v: 1, entries }), 'entries')).toBe(3);
    // a2: a map of two with a short count; keys in the other order; an unknown key before it.
    const other = Buffer.concat([Buffer.from([0xa3, 0x61, 0x78, 0x82, 0x01, 0x02]), Buffer.from([0x67]), Buffer.from('entries'), Buffer.from([0x9a, 0, 0x10, 0, 0]), Buffer.from([0x61, 0x76, 0x01])]);
    expect(topLevelArrayLength(other, 'entries')).toBe(0x100000);
    expect(topLevelArrayLength(encodeCbor({ v: 1 }), 'entries')).toBeUndefined();
    expect(topLevelArrayLength(Buffer.from([0x9a, 0xff, 0xff, 0xff, 0xff]), 'entries')).toBeUndefined();
    expect(topLevelArrayLength(Buffer.from([0xb9, 0x00]), 'entries')).toBeUndefined();
  });

  it('a tree claiming more than MAX_TREE_ENTRIES entries is refused before decoding', () => {
    const head = Buffer.concat([encodeCbor({ v: 1, entries: [] }).subarray(0, -1), Buffer.from([0x9a, 0x00, 0x5b, 0x8d, 0x80])]); // 6,000,000
    expect(() => decodeTree(head, 'tree x')).toThrow(/claims 6000000 entries/);
  });

  it('encodeTree refuses to write a tree readers would refuse', () => {
    const n = { name: Buffer.from('a'), type: 'file', mode: 0o644, uid: 0, gid: 0, user: '', group: '', mtime: { sec: 0, nsec: 0 }, size: 0, chunks: [] } as Node;
    const many = new Array<Node>(MAX_TREE_ENTRIES + 1).fill(n);
    try {
      encodeTree(many);
      expect.unreachable();
    } catch (e) {
      expect(isSnapError(e, 'SNAP_TOO_LARGE')).toBe(true);
    }
  });
});

describe('object claims', () => {
  const id = Buffer.alloc(32);
  it('a blob larger than the chunker maximum, a tree larger than 128 MiB, stored bytes far beyond the raw size: SNAP_CORRUPT', () => {
    const limits = objectLimits(8 << 20);
    expect(() => checkObjectClaim(id, { type: 'blob', length: 100, rawLength: 3 * 1024 ** 3, codec: 2 }, limits)).toThrow(/claims 3221225472 bytes/);
    expect(() => checkObjectClaim(id, { type: 'blob', length: 8 << 20, rawLength: 8 << 20, codec: 0 }, limits)).not.toThrow();
    expect(() => checkObjectClaim(id, { type: 'tree', length: 10, rawLength: 129 << 20, codec: 2 }, limits)).toThrow(/SNAP_CORRUPT|claims/);
    expect(() => checkObjectClaim(id, { type: 'blob', length: 2000, rawLength: 1000, codec: 0 }, limits)).toThrow(/stored bytes/);
  });
});

describe('config ranges', () => {
  const good = {
    format: 'snap-repository', version: 1, id: 'a'.repeat(32), created: '2026-01-01T00:00:00.000Z', hash: 'sha256',
    chunker: { algorithm: 'fastcdc-gear32-nc2', minSize: 512 * 1024, avgSize: 1 << 20, maxSize: 8 << 20, gearSeed: 'ab'.repeat(32) },
    compression: { codec: 'zstd', level: 3 }, packSize: 16 << 20,
  } as const;
  it('accepts the defaults and names the field that is out of range', () => {
    expect(configProblem(good as never)).toBeUndefined();
    expect(configProblem({ ...good, compression: { codec: 'deflate', level: 100 } } as never)).toMatch(/compression\.level/);
    expect(configProblem({ ...good, packSize: 2 ** 31 } as never)).toMatch(/packSize/);
    expect(configProblem({ ...good, packSize: 2 ** 40 } as never)).toMatch(/packSize/);
    expect(configProblem({ ...good, chunker: { ...good.chunker, maxSize: 2 ** 40 } } as never)).toMatch(/chunker/);
  });
});

describe('locks from the future', () => {
  const host = { hostname: 'here', pid: 1, isAlive: () => true };
  const now = new Date('2026-12-02T12:00:00Z');
  const lock = (refreshed: string) => ({ host: 'there', pid: 5, time: refreshed, refreshed, exclusive: true, command: 'gc' });
  it('is stale when its refresh time is more than the stale limit ahead, live within it', () => {
    expect(staleReason(lock('2027-12-02T12:00:00Z'), host as never, now)).toMatch(/in the future/);
    expect(staleReason(lock('2026-12-02T12:10:00Z'), host as never, now)).toBeUndefined();
    expect(staleReason(lock('2026-12-02T11:00:00Z'), host as never, now)).toMatch(/not been refreshed/);
  });
});

describe('terminalSafe', () => {
  it('escapes every control character but newline and tab; C1 and DEL in a form valid inside JSON strings', () => {
    expect(terminalSafe('a\x1b[31mb\r\x07\tc\n')).toBe('a\\x1b[31mb\\x0d\\x07\tc\n');
    expect(terminalSafe('x\x9b31m\x7f')).toBe('x\\u009b31m\\u007f');
    expect(JSON.parse(terminalSafe(JSON.stringify({ t: 'x\x9by' })))).toEqual({ t: 'x\x9by' });
    expect(terminalSafe('plain é ✓')).toBe('plain é ✓');
  });
});

describe('tree walks', () => {
  /** Trees in memory: a chain or a DAG of `depth` levels with `links` names each. */
  function dag(depth: number, links: number): { repo: { readTree(id: Buffer): Promise<Tree>; reads: number }; root: Buffer } {
    const trees = new Map<string, Tree>();
    const put = (nodes: Node[]): Buffer => {
      const bytes = encodeTree(nodes);
      const id = sha256(bytes);
      trees.set(id.toString('hex'), openTree(bytes, 'tree'));
      return id;
    };
    const meta = { mode: 0o755, uid: 0, gid: 0, user: '', group: '', mtime: { sec: 0, nsec: 0 }, size: 0 };
    let below = put([{ ...meta, name: Buffer.from('f'), type: 'file', chunks: [] } as Node]);
    for (let i = 0; i < depth; i++) {
      const t = below;
      below = put(Array.from({ length: links }, (_, k) => ({ ...meta, name: Buffer.from([97 + k]), type: 'dir', tree: t }) as Node));
    }
    const repo = {
      reads: 0,
      async readTree(id: Buffer): Promise<Tree> {
        this.reads++;
        return trees.get(id.toString('hex'))!;
      },
    };
    return { repo, root: below };
  }

  it('countPaths reads each distinct tree once and stops past its limit', async () => {
    const { repo, root } = dag(40, 2);
    expect(await countPaths(repo, root)).toBeGreaterThan(2 ** 32);
    expect(repo.reads).toBeLessThanOrEqual(41);
    const small = dag(3, 2);
    expect(await countPaths(small.repo, small.root)).toBe(2 + 4 + 8 + 8);
  });

  it('ExpansionGuard refuses a DAG at the second visit of a shared tree, and lets a chain of 20,000 levels pass', async () => {
    const { repo, root } = dag(40, 2);
    const g = new ExpansionGuard(repo, root);
    const top = await repo.readTree(root);
    await g.enter(root, top);
    const child = top.at(0).tree!;
    await g.enter(child, await repo.readTree(child));
    await expect(g.enter(child, await repo.readTree(child))).rejects.toThrow(/expand to more than 4294967296 paths/);
    const chain = dag(20_000, 1);
    expect(await countPaths(chain.repo, chain.root)).toBe(20_001);
  });

  it('foldTrees folds 20,000 levels bottom-up without recursion, each tree once', async () => {
    const { repo, root } = dag(20_000, 1);
    const memo = new Map<string, number>();
    const depth = await foldTrees(root, memo, {
      read: (id) => repo.readTree(id),
      unreadable: () => 0,
      finish: async (_id, _hex, nodes) => 1 + Math.max(0, ...[...nodes].map((n) => (n.tree ? memo.get(n.tree.toString('hex'))! : 0))),
    });
    expect(depth).toBe(20_001);
    expect(repo.reads).toBe(20_001);
  });
});
