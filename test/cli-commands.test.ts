// The CLI loads only the command it runs (src/cli/commands.ts): the table of command modules
// matches what each module registers, the command word is found as commander finds it, every
// command still runs and help still lists them all, and a command on a local repository loads
// neither the other commands nor the web UI nor the remote backends.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { COMMAND_MODULES, commandWord, registerCommands } from '../src/cli/commands.js';
import { CLI, CLI_NODE_FLAGS, newRepo, snap, tmpDir } from './helpers/cli.js';

const names = (p: Command): string[] => p.commands.flatMap((c) => [c.name(), ...c.aliases()]);

/** The global options as main.ts gives them (a value, no value, one with both forms). */
function program(): Command {
  return new Command('snap')
    .version('1')
    .option('-r, --repo <repo>')
    .option('--json')
    .option('-q, --quiet')
    .option('--lock-wait <duration>')
    .option('--password-file <file>')
    .option('--debug');
}

describe('the command table', () => {
  it('names exactly the commands and aliases each module registers', async () => {
    for (const m of COMMAND_MODULES) {
      const p = new Command('snap');
      (await m.load())(p, async () => {});
      expect(names(p), m.names.join(' ')).toEqual(m.names);
    }
    const all = COMMAND_MODULES.flatMap((m) => m.names);
    expect(new Set(all).size).toBe(all.length);
  });

  it('registers one module for a command, all of them where the command is not certain', async () => {
    const registered = async (args: string[]) => {
      const p = program();
      await registerCommands(p, async () => {}, args);
      return names(p);
    };
    expect(await registered(['-r', '/x', 'ls', 'latest'])).toEqual(['list', 'snapshots', 'ls', 'cat']);
    expect(await registered(['gc', '--dry-run'])).toEqual(['gc']);
    const everything = COMMAND_MODULES.flatMap((m) => m.names);
    for (const args of [[], ['--help'], ['help', 'gc'], ['lsit'], ['--nope', 'gc']]) expect(await registered(args), args.join(' ')).toEqual(everything);
  });
});

describe('commandWord', () => {
  const word = (...args: string[]) => commandWord(args, program().options);
  it('skips the global options and their values', () => {
    expect(word('list')).toBe('list');
    expect(word('-r', 'create', 'gc')).toBe('gc');
    expect(word('--repo', 'list', '--json', 'create', 'src')).toBe('create');
    expect(word('--repo=list', 'gc')).toBe('gc');
    expect(word('-rlist', 'gc')).toBe('gc');
    expect(word('-qr', 'list', 'gc')).toBe('gc');
    expect(word('-q', '--lock-wait', '5m', 'forget')).toBe('forget');
    expect(word('--debug', '-', 'x')).toBe('-');
    expect(word('create', '--repo', 'gc')).toBe('create');
  });
  it('says nothing where it is not certain', () => {
    expect(word()).toBeUndefined();
    expect(word('--json')).toBeUndefined();
    expect(word('-h', 'create')).toBeUndefined();
    expect(word('--help')).toBeUndefined();
    expect(word('--', 'list')).toBeUndefined();
    expect(word('--other', 'list')).toBeUndefined();
    expect(word('--other=1', 'list')).toBeUndefined();
    expect(word('-qx', 'list')).toBeUndefined();
    expect(word('-r')).toBeUndefined();
  });
});

describe('the CLI', () => {
  it('lists every command in its help, runs commands after global options, and names an unknown command', () => {
    const help = snap(['--help']);
    expect(help.code).toBe(0);
    for (const m of COMMAND_MODULES) expect(help.stdout).toMatch(new RegExp(`^  ${m.names[0]}\\b`, 'm'));
    const repo = newRepo();
    const made = snap(['-q', '--repo', repo, 'create', path.join(import.meta.dirname, 'helpers')]);
    expect(made.code, made.stderr).toBe(0);
    const listed = snap(['--json', `--repo=${repo}`, 'list']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toHaveLength(1);
    expect(snap(['-r', repo, 'gc', '--help']).stdout).toMatch(/--max-unused/);
    const unknown = snap(['-r', repo, 'lsit']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'lsit'/);
  }, 60_000);

  it('loads neither other commands, the web UI nor the remote backends for a command on a local repository', () => {
    const repo = newRepo();
    const log = path.join(tmpDir(), 'modules.txt');
    const hook = path.join(import.meta.dirname, 'helpers', 'module-log.mjs');
    const r = spawnSync(process.execPath, ['--import', hook, ...CLI_NODE_FLAGS, CLI, '--repo', repo, 'list'], {
      env: { ...process.env, SNAP_REPO: '', SNAP_TEST_MODULE_LOG: log },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const loaded = fs.readFileSync(log, 'utf8').split('\n').filter((u) => u.includes('/dist/'));
    expect(loaded.some((u) => u.endsWith('/dist/cli/cmd-list.js'))).toBe(true);
    expect(loaded.some((u) => u.endsWith('/dist/repo/repository.js'))).toBe(true);
    const unwanted = loaded.filter((u) => /\/dist\/(cli\/cmd-(?!list)|ui\/|backend\/(s3|sftp|azure)\.js|ops\/(backup|restore|maintain)\/)/.test(u));
    expect(unwanted).toEqual([]);
  }, 60_000);
});
