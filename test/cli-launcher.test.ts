// The installed `snap` is bin/snap (package.json "bin"): a shell script that starts the built CLI
// with the Node.js flags snap needs (a bounded young generation: docs/performance.md, "Node.js
// lines"). The flags reach the process, arguments pass as the bytes they are, and the tests that
// measure memory start the CLI with the same flags (helpers/node-flags.ts).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, CLI_NODE_FLAGS, ROOT, snap, tmpDir } from './helpers/cli.js';
import { LAUNCHER, launcherNodeFlagsFor } from './helpers/node-flags.js';
import { BACKUP_HEAP_FLAG, backupHeapFlag } from '../src/cli/backup-heap.js';

const withNode = { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`, SNAP_REPO: '', DISPLAY: '', WAYLAND_DISPLAY: '' };

describe('bin/snap', () => {
  it('is what package.json installs as `snap`', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; files: string[] };
    expect(pkg.bin).toEqual({ snap: 'bin/snap' });
    expect(pkg.files).toContain('bin');
    expect(fs.statSync(LAUNCHER).mode & 0o111).toBe(0o111);
    // The old generation's growth is the CLI's, for backups only (below).
    expect(CLI_NODE_FLAGS).toEqual(['--max-semi-space-size=8']);
  });

  it('starts the CLI with its flags, through a symlink as npm links it', async () => {
    expect(await startedArgv({})).toEqual([...CLI_NODE_FLAGS, fs.realpathSync(CLI)]);
  }, 60_000);

  it('sizes the young generation by the heap NODE_OPTIONS gives (an eighth, 1 to 8 MiB), and leaves a semi-space NODE_OPTIONS sets alone', async () => {
    const cases: [string, string[]][] = [
      ['--max-old-space-size=40', ['--max-semi-space-size=5']],
      ['--trace-warnings --max-old-space-size=160', ['--max-semi-space-size=8']],
      ['--max-old-space-size=56', ['--max-semi-space-size=7']],
      ['--max-old-space-size=4096', ['--max-semi-space-size=8']],
      ['--max-old-space-size=24', ['--max-semi-space-size=3']],
      ['--max-semi-space-size=2', []],
      ['--trace-warnings', CLI_NODE_FLAGS],
    ];
    for (const [opts, flags] of cases) {
      expect(await startedArgv({ NODE_OPTIONS: opts }), opts).toEqual([...flags, fs.realpathSync(CLI)]);
      // The tests start the CLI as the launcher does.
      expect(launcherNodeFlagsFor({ NODE_OPTIONS: opts }, CLI_NODE_FLAGS), opts).toEqual(flags);
    }
    // At least 1 MiB (a heap this small cannot start snap ui, so the rule alone).
    expect(launcherNodeFlagsFor({ NODE_OPTIONS: '--max-old-space-size=4' }, CLI_NODE_FLAGS)).toEqual(['--max-semi-space-size=1']);
  }, 120_000);

  /** The arguments node runs with (after `node`), the CLI started through a symlink to bin/snap as `snap ui`. */
  async function startedArgv(env: Record<string, string>): Promise<string[]> {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const link = path.join(base, 'bin', 'snap');
    fs.mkdirSync(path.dirname(link));
    fs.symlinkSync(LAUNCHER, link);
    const child = spawn(link, ['--repo', repo, 'ui', '--no-open', '--listen', '127.0.0.1:0'], { env: { ...withNode, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`snap ui printed no link in 30 s: ${err}`)), 30_000);
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (/token=/.test(out)) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.on('exit', (code) => reject(new Error(`snap ui exited with ${code}: ${err}`)));
      });
      // exec: the launcher's process is node itself, with the flags before the CLI.
      const argv = fs.readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
      expect(path.basename(argv[0]!)).toBe('node');
      return argv.slice(1, -6).map((a) => (a.endsWith('main.js') ? fs.realpathSync(a) : a));
    } finally {
      child.kill('SIGTERM');
    }
  }

  it('starts node with two malloc arenas unless MALLOC_ARENA_MAX is set; programs snap starts (a hook) get the environment as the user had it', () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'a'), 'arenas');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    // What node started with (glibc reads it then), from /proc, and what a hook of that process sees.
    const run = (env: Record<string, string>): { node: string[]; hook: string[] } => {
      const out = path.join(base, `hook-${Math.random().toString(36).slice(2)}`);
      const hook = `tr '\\0' '\\n' < /proc/$PPID/environ | grep -E '^(MALLOC_ARENA_MAX|SNAP_LAUNCHER_ARENAS)=' > '${out}.node'; env | grep -E '^(MALLOC_ARENA_MAX|SNAP_LAUNCHER_ARENAS)=' > '${out}'; true`;
      const r = spawnSync(LAUNCHER, ['--repo', repo, 'create', src, '--on-success', hook], { env: { ...withNode, ...env } });
      expect(r.status, r.stderr.toString()).toBe(0);
      const lines = (f: string): string[] => fs.readFileSync(f, 'utf8').split('\n').filter((l) => l !== '').sort();
      return { node: lines(`${out}.node`), hook: lines(out) };
    };
    const { MALLOC_ARENA_MAX: _drop, ...withoutArenas } = withNode;
    expect(run(withoutArenas)).toEqual({ node: ['MALLOC_ARENA_MAX=2', 'SNAP_LAUNCHER_ARENAS=1'], hook: [] });
    expect(run({ ...withoutArenas, MALLOC_ARENA_MAX: '4' })).toEqual({ node: ['MALLOC_ARENA_MAX=4'], hook: ['MALLOC_ARENA_MAX=4'] });
  }, 60_000);

  it('passes arguments that are not UTF-8 unchanged', () => {
    const base = tmpDir();
    const repo = Buffer.concat([Buffer.from(`${base}/repo-`), Buffer.from([0xff, 0x20, 0x24])]);
    // Through sh with the name as $'...' bytes: spawn takes only strings.
    const word = `$'${[...repo].map((x) => `\\x${x.toString(16).padStart(2, '0')}`).join('')}'`;
    const r = spawnSync('bash', ['-c', `exec '${LAUNCHER}' --repo ${word} init`], { env: withNode });
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(fs.existsSync(Buffer.concat([repo, Buffer.from('/config')]))).toBe(true);
  });
});

describe("a backup's heap (cli/backup-heap.ts)", () => {
  it('create and watch fix the old generation\'s growth, unless node was started with a factor of its own', () => {
    expect(BACKUP_HEAP_FLAG).toBe('--heap-growing-percent=20');
    expect(backupHeapFlag(CLI_NODE_FLAGS)).toBe(BACKUP_HEAP_FLAG);
    expect(backupHeapFlag(['--max-semi-space-size=8', '--heap-growing-percent=50'])).toBeUndefined();
    for (const f of ['cmd-create.ts', 'cmd-watch.ts']) {
      expect(fs.readFileSync(path.join(ROOT, 'src', 'cli', f), 'utf8'), f).toContain('useBackupHeap(process.execArgv)');
    }
  });

  it('a backup runs with the flag set by the CLI, and with a factor node was started with', () => {
    const src = tmpDir();
    fs.writeFileSync(path.join(src, 'f'), 'x'.repeat(100_000));
    for (const flags of [CLI_NODE_FLAGS, [...CLI_NODE_FLAGS, '--heap-growing-percent=50']]) {
      const repo = path.join(tmpDir(), 'repo');
      const run = (args: string[]) => spawnSync(process.execPath, [...flags, CLI, '--repo', repo, ...args], { env: withNode, encoding: 'utf8' });
      expect(run(['init']).status).toBe(0);
      const r = run(['create', src]);
      expect([r.status, r.stderr]).toEqual([0, '']);
      expect(run(['check', '--read-data']).status).toBe(0);
    }
  });
});
