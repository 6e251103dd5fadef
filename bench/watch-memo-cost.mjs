// The heap cost of a kept walk's folder records, shaped as src/ops/backup/create.ts's MemoDir: a tree id
// (a 32-byte Buffer from a hash), three numbers, a Map of the subfolders by name (latin1 key).
// node --expose-gc bench/watch-memo-cost.mjs FOLDERS_PER_LEVEL... (docs/performance.md, "Memory of a watch")
import { createHash } from 'node:crypto';
const fan = process.argv.slice(2).map(Number);
const gc = () => { for (let i = 0; i < 3; i++) globalThis.gc(); };
gc();
const before = process.memoryUsage();
let n = 0;
const make = (depth, name) => {
  n++;
  const kids = new Map();
  if (depth < fan.length) for (let i = 0; i < fan[depth]; i++) kids.set(`${depth === 0 ? 'd' : 's'}${i}`, make(depth + 1, `${name}/${i}`));
  return { tree: createHash('sha256').update(name).digest(), files: 10, bytes: 130, dirs: 1, kids };
};
const root = make(0, '');
gc();
const after = process.memoryUsage();
const heap = after.heapUsed - before.heapUsed;
const ext = (after.external + after.arrayBuffers) - (before.external + before.arrayBuffers);
console.log(JSON.stringify({ folders: n, heap_mb: +(heap / 2 ** 20).toFixed(1), external_mb: +(ext / 2 ** 20).toFixed(1), bytes_per_folder: Math.round((heap + ext) / n), rss_mb: Math.round(after.rss / 2 ** 20) }));
void root;
