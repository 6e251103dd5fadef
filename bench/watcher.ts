// Which file watcher `snap watch` uses (docs/design.md, "snap watch"): @parcel/watcher against
// node's fs.watch({ recursive: true }) on a tree of DIRS directories with FILES files each.
// Measured per watcher: time until the subscription is ready, memory it adds, and which events
// arrive for a new file in an existing directory, files in a fresh `mkdir -p` tree, and a burst.
// Run: node --import tsx bench/watcher.ts [DIRS] [FILES]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const DIRS = Number(process.argv[2] ?? 2000);
const FILES = Number(process.argv[3] ?? 5);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Sub {
  close(): Promise<void>;
}
type Start = (dir: string, onPath: (p: string) => void) => Promise<Sub>;

const parcel = createRequire(import.meta.url)('@parcel/watcher') as {
  subscribe(dir: string, fn: (err: Error | null, ev: { path: string }[]) => void): Promise<{ unsubscribe(): Promise<void> }>;
};

const watchers: Record<string, Start> = {
  '@parcel/watcher': async (dir, onPath) => {
    const s = await parcel.subscribe(dir, (err, ev) => {
      if (!err) for (const e of ev) onPath(e.path);
    });
    return { close: () => s.unsubscribe() };
  },
  'fs.watch recursive': async (dir, onPath) => {
    const w = fs.watch(dir, { recursive: true }, (_t, name) => name && onPath(path.join(dir, name.toString())));
    return { close: async () => w.close() };
  },
};

async function measure(name: string, start: Start): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-watch-bench-'));
  for (let d = 0; d < DIRS; d++) {
    const dir = path.join(root, `a${d % 20}`, `d${d}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < FILES; f++) fs.writeFileSync(path.join(dir, `f${f}`), 'x');
  }
  const seen = new Set<string>();
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  const sub = await start(root, (p) => seen.add(p));
  const ready = performance.now() - t0;
  const rss = process.memoryUsage().rss - rss0;
  await sleep(500);
  // 1. a new file in an existing directory
  const one = path.join(root, 'a3', 'd3', 'new');
  fs.writeFileSync(one, 'x');
  // 2. files in a fresh mkdir -p tree
  const deep: string[] = [];
  for (let i = 0; i < 20; i++) {
    const dir = path.join(root, `fresh${i}`, 'b', 'c');
    fs.mkdirSync(dir, { recursive: true });
    const f = path.join(dir, 'file');
    fs.writeFileSync(f, 'x');
    deep.push(f);
  }
  // 3. a burst of 3,000 new files in 30 new directories
  const burst: string[] = [];
  for (let d = 0; d < 30; d++) {
    fs.mkdirSync(path.join(root, `burst${d}`));
    for (let i = 0; i < 100; i++) {
      const f = path.join(root, `burst${d}`, `f${i}`);
      fs.writeFileSync(f, 'x');
      burst.push(f);
    }
  }
  await sleep(3000);
  await sub.close();
  const dirsSeen = deep.filter((f) => seen.has(path.join(root, f.slice(root.length + 1).split('/')[0]!))).length;
  console.log(
    `${name.padEnd(20)} ready ${ready.toFixed(0).padStart(6)} ms  +RSS ${(rss / 1048576).toFixed(1).padStart(5)} MB  ` +
      `new file: ${seen.has(one) ? 'yes' : 'NO'}  mkdir -p files: ${deep.filter((f) => seen.has(f)).length}/20 (top dirs ${dirsSeen}/20)  ` +
      `burst: ${burst.filter((f) => seen.has(f)).length}/3000 files`,
  );
  fs.rmSync(root, { recursive: true, force: true });
}

console.log(`tree: ${DIRS} directories, ${DIRS * FILES} files; Node ${process.version}, ${os.cpus().length} CPUs`);
for (const [name, start] of Object.entries(watchers)) await measure(name, start);
