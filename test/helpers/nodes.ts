// A file entry for unit tests of trees and records: the fields every file node has, overridable.
import { sha256 } from '../../src/core/ids.js';
import type { Node } from '../../src/model/node.js';

export const fileNode = (name: Buffer | string, extra: Partial<Node> = {}): Node => ({
  name: typeof name === 'string' ? Buffer.from(name) : name,
  type: 'file',
  mode: 0o644,
  uid: 1000,
  gid: 1000,
  user: 'u',
  group: 'g',
  mtime: { sec: 1_700_000_000, nsec: 123_456_789 },
  size: 3,
  chunks: [sha256(Buffer.from('abc'))],
  ...extra,
});
