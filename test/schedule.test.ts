// snap schedule (docs/automation.md, "Schedule"): calendar parsing for systemd and cron, units that
// the real `systemd-analyze verify` accepts, --print that writes nothing, a crontab line that
// really runs a backup through /bin/sh, and validation of names, calendars and commands.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI_NODE_FLAGS, snap, tmpDir } from './helpers/cli.js';
import { parseEvery, toCron, toOnCalendar } from '../src/model/schedule.js';
import { cronWithout, cronSchedules, cronWord, systemdWord } from '../src/model/schedule-units.js';

const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;
const hasCrontab = spawnSync('sh', ['-c', 'command -v crontab']).status === 0;

/** An environment where `systemctl --user` reaches no manager: tests never enable real timers. */
function isolated(): { cfg: string; env: Record<string, string> } {
  const base = tmpDir();
  const cfg = path.join(base, 'config');
  const run = path.join(base, 'run');
  fs.mkdirSync(run, { mode: 0o700 });
  return { cfg, env: { XDG_CONFIG_HOME: cfg, XDG_RUNTIME_DIR: run, DBUS_SESSION_BUS_ADDRESS: `unix:path=${path.join(run, 'no-bus')}` } };
}

describe('calendars', () => {
  const both = (every: string, at?: string) => {
    const c = parseEvery(every, at);
    return { systemd: toOnCalendar(c), cron: toCron(c) };
  };

  it('hourly, daily, weekly, monthly with --at', () => {
    expect(both('daily')).toEqual({ systemd: ['*-*-* 00:00:00'], cron: '0 0 * * *' });
    expect(both('daily', '02:30')).toEqual({ systemd: ['*-*-* 02:30:00'], cron: '30 2 * * *' });
    expect(both('hourly', ':15')).toEqual({ systemd: ['*-*-* *:15:00'], cron: '15 * * * *' });
    expect(both('weekly', '23:05')).toEqual({ systemd: ['Mon *-*-* 23:05:00'], cron: '5 23 * * 1' });
    expect(both('monthly', '04:00')).toEqual({ systemd: ['*-*-01 04:00:00'], cron: '0 4 1 * *' });
  });

  it('cron expressions: lists, ranges, steps, Sunday as 0 or 7, and either-day as two OnCalendar lines', () => {
    expect(both('*/15 9-17 * * 1-5')).toEqual({ systemd: ['Mon,Tue,Wed,Thu,Fri *-*-* 09,10,11,12,13,14,15,16,17:00,15,30,45:00'], cron: '0,15,30,45 9,10,11,12,13,14,15,16,17 * * 1,2,3,4,5' });
    expect(both('0 3 * * 7')).toEqual({ systemd: ['Sun *-*-* 03:00:00'], cron: '0 3 * * 0' });
    expect(both('0 3 1,15 * 0')).toEqual({ systemd: ['*-*-01,15 03:00:00', 'Sun *-*-* 03:00:00'], cron: '0 3 1,15 * 0' });
    expect(both('5 4 * */3 *')).toEqual({ systemd: ['*-01,04,07,10-* 04:05:00'], cron: '5 4 * 1,4,7,10 *' });
  });

  it('systemd calendar expressions become cron lines when cron can say them', () => {
    expect(both('Mon..Fri *-*-* 02:30')).toEqual({ systemd: ['Mon,Tue,Wed,Thu,Fri *-*-* 02:30:00'], cron: '30 2 * * 1,2,3,4,5' });
    expect(both('*-*-01 04:00:00')).toEqual({ systemd: ['*-*-01 04:00:00'], cron: '0 4 1 * *' });
    expect(both('Sat,Sun 10:00')).toEqual({ systemd: ['Sun,Sat *-*-* 10:00:00'], cron: '0 10 * * 0,6' });
    expect(both('*:0/20')).toEqual({ systemd: ['*-*-* *:00,20,40:00'], cron: '0,20,40 * * * *' });
    // Both a weekday and a day of the month (systemd: both must hold) has no cron form.
    expect(() => toCron(parseEvery('Fri *-*-13 00:00'))).toThrow(/cron cannot express/);
    expect(toOnCalendar(parseEvery('Fri *-*-13 00:00'))).toEqual(['Fri *-*-13 00:00:00']);
  });

  it('refuses what it cannot schedule exactly, with SNAP_USAGE', () => {
    for (const bad of ['', 'sometimes', '61 * * * *', '* * * *', '0 0 32 * *', '*/0 * * * *', '5-1 * * * *', '2026-12-24 10:00', '*-*-* 10:00:30', 'Funday 10:00']) {
      expect(() => parseEvery(bad), bad).toThrow(/--every/);
    }
    expect(() => parseEvery('daily', '25:00')).toThrow(/--at '25:00'/);
    expect(() => parseEvery('0 3 * * *', '02:00')).toThrow(/--at goes with/);
  });

  it.skipIf(!hasAnalyze)('systemd-analyze calendar accepts every OnCalendar value written (skipped without systemd-analyze)', () => {
    const values = ['daily', 'hourly', '*/15 9-17 * * 1-5', '0 3 1,15 * 0', '5 4 * */3 *', 'Mon..Fri *-*-* 02:30', '*:0/20', 'Fri *-*-13 00:00'].flatMap((e) => toOnCalendar(parseEvery(e)));
    const r = spawnSync('systemd-analyze', ['calendar', ...values], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });
});

describe('quoting', () => {
  it('unit command lines double-quote and escape %, $, \\ and "', () => {
    expect(systemdWord('a b')).toBe('"a b"');
    expect(systemdWord('100% $HOME "x" \\')).toBe('"100%% $$HOME \\"x\\" \\\\"');
    expect(() => systemdWord('a\x01')).toThrow(/control character/);
  });
  it("crontab words single-quote for /bin/sh and escape cron's %", () => {
    expect(cronWord("it's 100%")).toBe("'it'\\''s 100\\%'");
    expect(() => cronWord('a\nb')).toThrow(/control character/);
  });
  it('crontab entries are found and removed by name, other lines kept', () => {
    const tab = ['MAILTO=me', '# snap-schedule: {"name":"a","every":"daily","argv":["n","s","create","/x"],"cwd":"/"}', '0 0 * * * cd / && n s create /x', '@reboot other', ''].join('\n');
    expect(cronSchedules(tab).map((s) => s.name)).toEqual(['a']);
    expect(cronWithout(tab, 'a')).toEqual({ text: 'MAILTO=me\n@reboot other\n', found: true });
    expect(cronWithout(tab, 'b').found).toBe(false);
  });
});

describe('snap schedule', () => {
  it('--print shows the units and writes nothing', () => {
    const { cfg, env } = isolated();
    const r = snap(['--repo', '/srv/backup', 'schedule', 'add', 'nightly', '--every', 'daily', '--at', '02:00', '--via', 'systemd', '--print', '--', 'create', '/home'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`# ${cfg}/systemd/user/snap-nightly.timer`);
    expect(r.stdout).toContain('OnCalendar=*-*-* 02:00:00\nPersistent=true');
    // The installed command's heap flags (bin/snap) go into the unit with the node that runs it.
    expect(CLI_NODE_FLAGS).not.toEqual([]);
    const flags = CLI_NODE_FLAGS.map((f) => `"${f}" `).join('');
    expect(r.stdout).toContain(`" ${flags}"`);
    expect(r.stdout).toMatch(/ExecStart="[^"]+" ("--[a-z-]+=\d+" )+"[^"]+main\.js" "--repo" "\/srv\/backup" "--lock-wait" "1h" "create" "\/home"/);
    // The environment bin/snap gives node (two malloc arenas), as the unit starts node itself.
    expect(r.stdout).toContain('\nEnvironment=MALLOC_ARENA_MAX=2 SNAP_LAUNCHER_ARENAS=1\n');
    expect(fs.existsSync(cfg)).toBe(false);
    const c = snap(['--repo', '/srv/backup', 'schedule', 'add', 'nightly', '--every', '0 2 * * *', '--via', 'cron', '--print', '--', 'create', '/home'], { env });
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/^0 2 \* \* \* cd '[^']+' && MALLOC_ARENA_MAX=2 SNAP_LAUNCHER_ARENAS=1 '[^']+' ('--[a-z-]+=\d+' )+'[^']+main\.js' '--repo' '\/srv\/backup' '--lock-wait' '1h' 'create' '\/home'$/m);
    expect(fs.existsSync(cfg)).toBe(false);
  });

  it.skipIf(!hasAnalyze)('add writes units that systemd-analyze verify accepts; list, --force and remove (skipped without systemd-analyze)', () => {
    const { cfg, env } = isolated();
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'my files');
    fs.mkdirSync(src);
    const add = (name: string, every: string, ...rest: string[]) =>
      snap(['--repo', repo, 'schedule', 'add', name, '--every', every, '--via', 'systemd', ...rest, '--', 'create', src, '--exclude', '*.tmp', '--on-failure', 'echo "snap $SNAP_HOOK_RESULT: 100%"'], { env, cwd: base });
    const a = add('nightly', 'daily', '--at', '02:30');
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/not started: systemd's user manager is not reachable/);
    expect(a.stdout).toContain('systemctl --user daemon-reload && systemctl --user enable --now snap-nightly.timer');
    expect(add('office', '*/15 9-17 * * 1-5').code).toBe(0);
    expect(add('twice', '0 3 1,15 * 0').code).toBe(0);
    const dir = path.join(cfg, 'systemd', 'user');
    const files = fs.readdirSync(dir).sort();
    expect(files).toEqual(['snap-nightly.service', 'snap-nightly.timer', 'snap-office.service', 'snap-office.timer', 'snap-twice.service', 'snap-twice.timer']);
    const v = spawnSync('systemd-analyze', ['--user', 'verify', ...files.map((f) => path.join(dir, f))], { encoding: 'utf8', env: { ...process.env, ...env } });
    expect(v.status, v.stderr).toBe(0);
    expect(v.stdout + v.stderr).toBe(''); // not even a warning (an unknown key would be one)
    const service = fs.readFileSync(path.join(dir, 'snap-nightly.service'), 'utf8');
    expect(service).toContain(`WorkingDirectory=${base}\n`);
    expect(service).toContain(`"${src}" "--exclude" "*.tmp" "--on-failure" "echo \\"snap $$SNAP_HOOK_RESULT: 100%%\\""`);
    expect(fs.readFileSync(path.join(dir, 'snap-twice.timer'), 'utf8')).toContain('OnCalendar=*-*-01,15 03:00:00\nOnCalendar=Sun *-*-* 03:00:00\nPersistent=true');

    const l = snap(['--json', 'schedule', 'list', '--via', 'systemd'], { env });
    expect(l.code, l.stderr).toBe(0);
    const listed = JSON.parse(l.stdout) as { name: string; via: string; every: string; command: string[] }[];
    expect(listed.map((s) => [s.name, s.via, s.every])).toEqual([['nightly', 'systemd', 'daily'], ['office', 'systemd', '*/15 9-17 * * 1-5'], ['twice', 'systemd', '0 3 1,15 * 0']]);
    // node, bin/snap's heap flags, the CLI, then the command.
    expect(listed[0]!.command.slice(1, 1 + CLI_NODE_FLAGS.length)).toEqual(CLI_NODE_FLAGS);
    expect(listed[0]!.command.slice(2 + CLI_NODE_FLAGS.length)).toEqual(['--repo', repo, '--lock-wait', '1h', 'create', src, '--exclude', '*.tmp', '--on-failure', 'echo "snap $SNAP_HOOK_RESULT: 100%"']);

    const again = add('nightly', 'hourly');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/a schedule named 'nightly' exists .*\[SNAP_EXISTS\]/);
    expect(add('nightly', 'hourly', '--force').code).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'snap-nightly.timer'), 'utf8')).toContain('OnCalendar=*-*-* *:00:00');

    const rm = snap(['schedule', 'remove', 'nightly', '--via', 'systemd'], { env });
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stdout).toMatch(/run 'systemctl --user daemon-reload'/);
    expect(fs.readdirSync(dir).sort()).toEqual(['snap-office.service', 'snap-office.timer', 'snap-twice.service', 'snap-twice.timer']);
    const gone = snap(['schedule', 'remove', 'nightly', '--via', 'systemd'], { env });
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/no schedule named 'nightly' .*\[SNAP_NOT_FOUND\]/);
  });

  it('the crontab line is a working shell command: run through /bin/sh, it makes a snapshot', () => {
    const { env } = isolated();
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, "it's mine");
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f'), 'scheduled');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const p = snap(['--repo', repo, '--json', 'schedule', 'add', 'n', '--every', 'hourly', '--via', 'cron', '--print', '--', 'create', src, '--tag', 'scheduled'], { env, cwd: base });
    expect(p.code, p.stderr).toBe(0);
    const line = (JSON.parse(p.stdout) as { crontab: string[] }).crontab[1]!;
    const command = line.split(' ').slice(5).join(' ');
    const r = spawnSync('/bin/sh', ['-c', command], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', HOME: base } });
    expect(r.status, r.stderr).toBe(0);
    const snaps = JSON.parse(snap(['--repo', repo, '--json', 'list']).stdout) as { tags: string[]; paths: string[] }[];
    expect(snaps.map((s) => [s.paths, s.tags])).toEqual([[[src], ['scheduled']]]);
  });

  it('validates the name, the calendar and the command (SNAP_USAGE, exit 2), before writing anything', () => {
    const { cfg, env } = isolated();
    const add = (name: string, every: string, ...command: string[]) => snap(['schedule', 'add', name, '--every', every, '--via', 'systemd', '--', ...command], { env });
    const cases: [ReturnType<typeof add>, RegExp][] = [
      [add('../x', 'daily', 'create', '/x'), /schedule name '\.\.\/x' is not allowed/],
      [add('a/b', 'daily', 'create', '/x'), /is not allowed/],
      [add('a b', 'daily', 'create', '/x'), /is not allowed/],
      [add('a@b', 'daily', 'create', '/x'), /is not allowed/],
      [add('ok', 'every tuesday', 'create', '/x'), /--every/],
      [add('ok2', 'daily'), /give the command to run after '--'/],
      [add('ok2', 'daily', 'restore', 'latest', '/t'), /'restore' cannot be scheduled/],
      [add('ok2', 'daily', 'create', '--repo', '/r', '/x'), /give --repo before 'schedule'/],
      [add('ok2', 'daily', 'create', '--password', 'hunter2', '/x'), /--password would be written into the unit/],
    ];
    for (const [r, msg] of cases) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).toMatch(/\[SNAP_USAGE\]\n$/);
    }
    expect(fs.existsSync(cfg)).toBe(false);
    // 31 February: valid syntax that never comes, as in cron; accepted.
    expect(add('ok', '0 0 31 2 *', 'create', '/x').code).toBe(0);
    expect(fs.readdirSync(path.join(cfg, 'systemd', 'user'))).toEqual(['snap-ok.service', 'snap-ok.timer']);
    const missing = snap(['schedule', 'add', 'x', '--', 'create', '/x'], { env });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--every/);
    const via = snap(['schedule', 'add', 'x', '--every', 'daily', '--via', 'launchd', '--', 'create', '/x'], { env });
    expect(via.code).toBe(2);
    expect(via.stderr).toMatch(/--via 'launchd' is not one of auto, systemd, cron/);
  });

  it.skipIf(!hasCrontab || process.env.SNAP_TEST_CRONTAB !== '1')(
    "installs into and removes from the real crontab (runs only with SNAP_TEST_CRONTAB=1: it edits this user's crontab, then restores it)",
    () => {
      const { env } = isolated();
      const before = spawnSync('crontab', ['-l'], { encoding: 'utf8' });
      try {
        const a = snap(['--repo', '/srv/r', 'schedule', 'add', 'snaptest', '--every', '30 2 * * *', '--via', 'cron', '--', 'create', '/home'], { env });
        expect(a.code, a.stderr).toBe(0);
        const tab = spawnSync('crontab', ['-l'], { encoding: 'utf8' }).stdout;
        expect(tab).toMatch(/^30 2 \* \* \* cd .* 'create' '\/home'$/m);
        if (before.status === 0) expect(tab.startsWith(before.stdout.replace(/\n*$/, ''))).toBe(true);
        const l = JSON.parse(snap(['--json', 'schedule', 'list', '--via', 'cron'], { env }).stdout) as { name: string }[];
        expect(l.map((s) => s.name)).toContain('snaptest');
        expect(snap(['schedule', 'remove', 'snaptest', '--via', 'cron'], { env }).code).toBe(0);
        expect(spawnSync('crontab', ['-l'], { encoding: 'utf8' }).stdout).not.toContain('snaptest');
      } finally {
        if (before.status === 0) spawnSync('crontab', ['-'], { input: before.stdout });
        else spawnSync('crontab', ['-r']);
      }
    },
  );
});
