// `node --import tsx bench/shared-index.ts [files]`: what a command pays when another snap process
// owns the index and it is that owner's client (docs/design.md, "Sharing the index"). The same
// backup, ls -R and restore of many small files (one index lookup each) run alone (the command
// owns the LevelDB) and beside an owner (a backup of standard input kept open), alternately.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const FILES = Number(process.argv[2] ?? 20_000);
const ROUNDS = 3;

function snap(args: string[]): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, SNAP_REPO: '' }, stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`snap ${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}`);
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** A process that owns the repository's index until stopped: a backup of a pipe kept open. */
function holder(repo: string): Promise<ChildProcess> {
  const c = spawn(process.execPath, [CLI, '--repo', repo, 'create', '--stdin', '--stdin-filename', 'hold'], { stdio: ['pipe', 'ignore', 'ignore'] });
  return new Promise((resolve) => {
    const poll = setInterval(() => {
      try {
        const pid = (JSON.parse(fs.readFileSync(path.join(repo, 'index', 'snap-index.owner'), 'utf8')) as { pid: number }).pid;
        if (pid === c.pid) {
          clearInterval(poll);
          resolve(c);
        }
      } catch {
        // not yet
      }
    }, 20);
  });
}

async function stop(c: ChildProcess): Promise<void> {
  const done = new Promise((r) => c.on('close', r));
  c.stdin!.end();
  await done;
}

const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

async function main(): Promise<void> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-bench-shared-'));
  try {
    const src = path.join(base, 'src');
    for (let i = 0; i < FILES; i++) {
      const d = path.join(src, `d${i % 100}`);
      if (i < 100) fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, `f${i}`), crypto.getRandomValues(new Uint8Array(1024 + (i % 3072))));
    }
    const times: Record<string, { alone: number[]; client: number[] }> = {};
    const note = (step: string, mode: 'alone' | 'client', s: number): void => {
      (times[step] ??= { alone: [], client: [] })[mode].push(s);
    };
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of round % 2 === 0 ? (['alone', 'client'] as const) : (['client', 'alone'] as const)) {
        const repo = path.join(base, `repo-${round}-${mode}`);
        snap(['--repo', repo, 'init']);
        const h = mode === 'client' ? await holder(repo) : undefined;
        try {
          note('backup (new files)', mode, snap(['--repo', repo, 'create', src]));
          note('backup (unchanged)', mode, snap(['--repo', repo, 'create', src]));
          note('ls -R', mode, snap(['--repo', repo, 'ls', '-R', 'latest']));
          const target = path.join(base, `restore-${round}-${mode}`);
          note('restore', mode, snap(['--repo', repo, 'restore', 'latest', target]));
          fs.rmSync(target, { recursive: true, force: true });
        } finally {
          if (h) await stop(h);
        }
        fs.rmSync(repo, { recursive: true, force: true });
      }
    }
    console.log(`| step (${FILES.toLocaleString('en')} files of 1-4 KiB, median of ${ROUNDS}) | alone: owns the index (s) | client of another owner (s) | client / alone |`);
    console.log('| --- | ---: | ---: | ---: |');
    for (const [step, t] of Object.entries(times)) {
      const a = median(t.alone);
      const c = median(t.client);
      console.log(`| ${step} | ${a.toFixed(2)} | ${c.toFixed(2)} | ${(c / a).toFixed(2)} |`);
    }
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}

await main();
