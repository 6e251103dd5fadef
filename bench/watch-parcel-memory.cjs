// bench/watch-parcel-memory.cjs TOP SUB FILES (node --expose-gc): docs/performance.md, "Memory of a watch".
// RSS of @parcel/watcher alone subscribed to a tree of TOP*SUB folders of FILES files.
const w = require('@parcel/watcher');
const fs = require('fs'), path = require('path'), os = require('os');
const [top, sub, files] = process.argv.slice(2).map(Number);
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'parcel-mem-'));
for (let i = 0; i < top; i++) for (let j = 0; j < sub; j++) {
  const d = path.join(base, `d${i}`, `s${j}`);
  fs.mkdirSync(d, { recursive: true });
  for (let k = 0; k < files; k++) fs.writeFileSync(path.join(d, `f${k}`), `file ${i}/${j}/${k}\n`);
}
const rss = () => Math.round(Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) / 1024);
(async () => {
  global.gc?.();
  const before = rss();
  const s = await w.subscribe(base, () => {});
  await new Promise((r) => setTimeout(r, 1000));
  global.gc?.();
  const after = rss();
  console.log(JSON.stringify({ folders: 1 + top + top * sub, files: top * sub * files, rss_before_mb: before, rss_subscribed_mb: after, added_mb: after - before }));
  await s.unsubscribe();
  fs.rmSync(base, { recursive: true, force: true });
})();
