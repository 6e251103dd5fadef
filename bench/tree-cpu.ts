// CPU of walking trees (issue 20, the cost of tree views): `ls -R` over a snapshot shaped like a
// real system (/usr mirrored: names, types, sizes and times, ~140,000 entries in ~10,000 trees;
// files name made-up chunks, which ls never reads) and `check --read-data` of one directory of
// 1,000,000 empty files (as test/torture/repo-caps.test.ts makes it). Each command runs RUNS times
// with its user+sys CPU seconds taken from the child's resource usage; the load average is printed
// with each run, since the machine is shared.
// usage: node --import tsx bench/tree-cpu.ts [--cli dist/cli/main.js]... [--runs 3] [--dir /tmp/x] [--prof DIR]
//   Several --cli: the builds alternate run by run (A B A B ...), so drift hits both alike.
//   --prof DIR: one more run of each command with `node --cpu-prof` into DIR.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalBackend } from '../src/backend/local.js';
import { fsEncode } from '../src/core/bytes.js';
import { encodeCbor } from '../src/model/cbor.js';
import type { Node } from '../src/model/node.js';
import { encodeSnapshot } from '../src/model/snapshot.js';
import { encodeTree, sortNodes } from '../src/model/tree.js';
import { PackBuilder, packName } from '../src/store/pack.js';

const args = process.argv.slice(2);
const opt = (name: string): string[] => args.flatMap((a, i) => (a === name && args[i + 1] ? [args[i + 1]!] : []));
const clis = opt('--cli').length > 0 ? opt('--cli').map((c) => path.resolve(c)) : [path.resolve('dist/cli/main.js')];
const runs = Number(opt('--runs')[0] ?? 3);
const dir = opt('--dir')[0] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'snap-tree-cpu-'));
fs.mkdirSync(dir, { recursive: true });
const prof = opt('--prof')[0];

const sha = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

class Packer {
  private b = new PackBuilder();
  private n = 0;
  constructor(private readonly repo: string) {}
  async add(type: 'tree' | 'blob', raw: Buffer): Promise<Buffer> {
    const id = sha(raw);
    this.b.add(id, type, raw, raw.length, 0);
    if (++this.n >= 20_000) await this.flush();
    return id;
  }
  async flush(): Promise<void> {
    if (this.n === 0) return;
    const { id, bytes } = this.b.seal();
    await new LocalBackend(this.repo).put(packName(id), bytes);
    this.b = new PackBuilder();
    this.n = 0;
  }
}

function snap(cli: string, a: string[], o: { node?: string[]; out?: string } = {}): { cpu: number; code: number | null } {
  const wrap = path.join(dir, 'wrap.mjs');
  fs.writeFileSync(wrap, `import * as fs from 'node:fs';\nprocess.on('exit', () => { const u = process.resourceUsage(); fs.writeFileSync(process.env.CPU_FILE, String((u.userCPUTime + u.systemCPUTime) / 1e6)); });\nawait import(${JSON.stringify(cli)});\n`);
  const cpuFile = path.join(dir, 'cpu');
  fs.rmSync(cpuFile, { force: true });
  const out = fs.openSync(o.out ?? '/dev/null', 'w');
  const r = spawnSync(process.execPath, [...(o.node ?? []), wrap, ...a], { stdio: ['ignore', out, 'pipe'], env: { ...process.env, CPU_FILE: cpuFile, SNAP_REPO: '' }, maxBuffer: 1 << 26 });
  fs.closeSync(out);
  if (r.status !== 0) throw new Error(`${a.join(' ')}: exit ${r.status}\n${r.stderr.toString().slice(-2000)}`);
  return { cpu: Number(fs.readFileSync(cpuFile, 'utf8')), code: r.status };
}

const baseNode = (name: Buffer, st: fs.Stats): Node => ({
  name, type: 'file', mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, user: 'root', group: 'root',
  mtime: { sec: Math.floor(st.mtimeMs / 1000), nsec: Math.min(999_999_999, Math.round((st.mtimeMs % 1000) * 1e6)) }, size: 0,
});

/** The tree of `abs`, mirrored (files get one made-up chunk per MiB). */
async function mirror(p: Packer, abs: string, count: { n: number }): Promise<Buffer> {
  const nodes: Node[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(abs);
  } catch {
    names = [];
  }
  for (const name of names) {
    const full = path.join(abs, name);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(full);
    } catch {
      continue;
    }
    const n = baseNode(fsEncode(name), st);
    count.n++;
    if (st.isDirectory()) {
      n.type = 'dir';
      n.tree = await mirror(p, full, count);
    } else if (st.isSymbolicLink()) {
      n.type = 'symlink';
      n.target = fsEncode(fs.readlinkSync(full));
    } else if (st.isFile()) {
      n.size = st.size;
      n.chunks = Array.from({ length: Math.ceil(st.size / (1 << 20)) }, (_, i) => sha(Buffer.from(`${full}:${i}`)));
    } else continue;
    nodes.push(n);
  }
  return p.add('tree', encodeTree(sortNodes(nodes)));
}

async function putSnapshot(repo: string, tree: Buffer, paths: string[]): Promise<string> {
  const zero = { filesNew: 0, filesChanged: 0, filesUnchanged: 0, dirsNew: 0, dirsChanged: 0, dirsUnchanged: 0, bytesRead: 0, totalBytes: 0, totalFiles: 0, dataAdded: 0, objectsAdded: 0, warnings: 0, durationMs: 0 };
  const { id, bytes } = encodeSnapshot({ time: new Date().toISOString(), hostname: 'bench', username: 'bench', paths, tags: [], tree, program: 'bench', excludes: [], summary: zero });
  await new LocalBackend(repo).put(`snapshots/${id}`, bytes);
  return id;
}

/** A repository whose snapshot mirrors /usr. */
async function usrRepo(cli: string): Promise<{ repo: string; id: string; entries: number }> {
  const repo = path.join(dir, 'usr');
  const meta = path.join(dir, 'usr.json');
  if (fs.existsSync(meta)) return JSON.parse(fs.readFileSync(meta, 'utf8')) as { repo: string; id: string; entries: number };
  snap(cli, ['--repo', repo, 'init']);
  const p = new Packer(repo);
  const count = { n: 0 };
  const usr = await mirror(p, '/usr', count);
  const st = fs.lstatSync('/usr');
  const root = await p.add('tree', encodeTree([{ ...baseNode(Buffer.from('usr'), st), type: 'dir', tree: usr }]));
  await p.flush();
  const id = await putSnapshot(repo, root, ['/usr']);
  snap(cli, ['--repo', repo, 'index', 'rebuild']);
  const r = { repo, id, entries: count.n };
  fs.writeFileSync(meta, JSON.stringify(r));
  return r;
}

/** A repository whose /x holds 1,000,000 empty files f0000000... (one tree of 81 MB). */
async function capRepo(cli: string): Promise<{ repo: string; id: string }> {
  const repo = path.join(dir, 'cap');
  const meta = path.join(dir, 'cap.json');
  if (fs.existsSync(meta)) return JSON.parse(fs.readFileSync(meta, 'utf8')) as { repo: string; id: string };
  snap(cli, ['--repo', repo, 'init']);
  const n = 1_000_000;
  const empty = encodeCbor({ v: 1, entries: [] });
  const tpl = encodeCbor({ name: Buffer.alloc(8), type: 'file', mode: 0o644, uid: 0, gid: 0, user: '', group: '', mtime: [1, 0], size: 0, chunks: [] });
  const at = tpl.indexOf(Buffer.from([0x48, 0, 0, 0, 0, 0, 0, 0, 0])) + 1;
  const raw = Buffer.allocUnsafe(empty.length - 1 + 5 + n * tpl.length);
  let pos = empty.copy(raw, 0, 0, empty.length - 1);
  raw.set([0x9a, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255], pos);
  pos += 5;
  for (let i = 0; i < n; i++, pos += tpl.length) {
    tpl.copy(raw, pos);
    raw.write(`f${String(i).padStart(7, '0')}`, pos + at, 'latin1');
  }
  const p = new Packer(repo);
  const x = await p.add('tree', raw);
  const root = await p.add('tree', encodeCbor({ v: 1, entries: [{ name: Buffer.from('x'), type: 'dir', mode: 0o755, uid: 0, gid: 0, user: '', group: '', mtime: [1, 0], size: 0, tree: x }] }));
  await p.flush();
  const id = await putSnapshot(repo, root, ['/x']);
  snap(cli, ['--repo', repo, 'index', 'rebuild']);
  const r = { repo, id };
  fs.writeFileSync(meta, JSON.stringify(r));
  return r;
}

async function main(): Promise<void> {
  const usr = await usrRepo(clis[0]!);
  const cap = await capRepo(clis[0]!);
  console.log(`corpus in ${dir}: /usr mirrored (${usr.entries} entries), one directory of 1,000,000 entries; node ${process.version}`);
  const cases: [string, string[]][] = [
    ['ls -R /usr mirror', ['--repo', usr.repo, 'ls', '-R', usr.id, '/']],
    ['check --read-data 1M', ['--repo', cap.repo, 'check', '--read-data']],
  ];
  const cpu = new Map<string, number[]>();
  for (let r = 0; r < runs; r++) {
    for (const [what, a] of cases) {
      for (const cli of clis) {
        const load = os.loadavg()[0]!.toFixed(1);
        const { cpu: s } = snap(cli, a);
        const k = `${what} | ${cli}`;
        cpu.set(k, [...(cpu.get(k) ?? []), s]);
        console.log(`run ${r + 1} ${what} ${cli}: ${s.toFixed(2)} s CPU (load ${load})`);
      }
    }
  }
  for (const [k, v] of cpu) console.log(`${k}: ${v.map((x) => x.toFixed(2)).join(' ')} (median ${[...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!.toFixed(2)})`);
  if (prof) {
    fs.mkdirSync(prof, { recursive: true });
    for (const [what, a] of cases) {
      for (const [i, cli] of clis.entries()) snap(cli, a, { node: ['--cpu-prof', `--cpu-prof-dir=${prof}`, `--cpu-prof-name=${what.replace(/\W+/g, '-')}-${i}.cpuprofile`] });
    }
  }
}

await main();
