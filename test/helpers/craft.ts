// Snapshots made through the repository's own API, holding exactly what a test needs: trees a
// backup could not produce on this machine (times before 1901, 5,000 levels, a tree DAG, hard
// links recorded with different contents). A real repository, real objects, a real index.
import * as path from 'node:path';
import { Repository } from '../../src/repo/repository.js';
import { encodeTree } from '../../src/model/tree.js';
import type { Node } from '../../src/model/node.js';
import { currentHost } from '../../src/cli/host.js';

export interface Crafter {
  blob(data: Buffer | string): Promise<Buffer>;
  tree(nodes: Node[]): Promise<Buffer>;
}

export function node(name: string, type: Node['type'], extra: Partial<Node> = {}): Node {
  return { name: Buffer.from(name), type, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, user: '', group: '', mtime: { sec: 1_600_000_000, nsec: 0 }, size: 0, ...extra };
}

export async function fileNode(c: Crafter, name: string, data: string, extra: Partial<Node> = {}): Promise<Node> {
  return node(name, 'file', { size: Buffer.byteLength(data), chunks: data.length > 0 ? [await c.blob(data)] : [], ...extra });
}

const ZERO_SUMMARY = {
  filesNew: 0, filesChanged: 0, filesUnchanged: 0, dirsNew: 0, dirsChanged: 0, dirsUnchanged: 0,
  bytesRead: 0, totalBytes: 0, totalFiles: 0, dataAdded: 0, objectsAdded: 0, warnings: 0, durationMs: 0,
};

/** Save one snapshot, whose root tree `build` makes, into the existing repository `repo`; returns its id. */
export async function craftSnapshot(repo: string, build: (c: Crafter) => Promise<Buffer>): Promise<string> {
  const r = await Repository.open(path.resolve(repo), { host: currentHost(), sink: { warn: () => {}, info: () => {} }, lockWaitMs: 30_000 });
  try {
    const c: Crafter = {
      blob: async (d) => (await r.objects.add('blob', Buffer.from(d))).id,
      tree: async (nodes) => (await r.objects.add('tree', encodeTree([...nodes].sort((a, b) => Buffer.compare(a.name, b.name))))).id,
    };
    const tree = await build(c);
    const s = await r.saveSnapshot({
      time: new Date().toISOString(), hostname: 'crafted', username: 'test', paths: ['/x'], tags: [], tree, program: 'test', excludes: [], summary: ZERO_SUMMARY,
    });
    return s.id;
  } finally {
    await r.close();
  }
}
