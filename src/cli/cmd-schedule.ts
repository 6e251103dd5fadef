// `snap schedule add|list|remove` (docs/automation.md, "Schedule"): run a snap command at set
// times through the machine's own scheduler, a systemd user timer or a crontab entry. snap keeps
// no daemon: the scheduler starts an ordinary `snap create`, whose result the operation log and
// the hooks report.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { SnapError } from '../core/errors.js';
import { displayPath, hasEscapedBytes } from '../core/bytes.js';
import { secretOptions } from '../model/oplog.js';
import { parseEvery, toCron, toOnCalendar, type Calendar } from '../model/schedule.js';
import { checkScheduleName, cronEntry, cronSchedules, cronWithout, type ScheduleSpec, serviceUnit, timerUnit, unitBase } from '../model/schedule-units.js';
import type { Ctx } from './context.js';
import { scheduledCredentials } from '../repo/storage.js';
import { table } from './format.js';
import {
  chooseVia, onPath, readCrontab, systemctlUser, systemdSchedules, unitDir, unitFiles, userManagerReachable, type Via, writeCrontab, writeFileAtomic,
} from './schedule-install.js';

/** Commands a schedule may run: the ones that make sense unattended. */
const SCHEDULABLE = new Set(['create', 'forget', 'gc', 'check', 'drill']);

/** A scheduled run waits this long for another snap process (a manual gc) before giving up. */
const SCHEDULED_LOCK_WAIT = '1h';

interface AddFlags {
  every: string;
  at?: string;
  via?: string;
  print?: boolean;
  force?: boolean;
}

function checkCommand(command: string[]): void {
  if (command.length === 0) throw new SnapError('SNAP_USAGE', "give the command to run after '--': snap schedule add NAME --every daily -- create ~/Documents");
  if (!SCHEDULABLE.has(command[0]!)) throw new SnapError('SNAP_USAGE', `'${displayPath(command[0]!)}' cannot be scheduled: the command after '--' is one of ${[...SCHEDULABLE].join(', ')}`);
  if (command.some((a) => a === '-r' || a === '--repo' || a.startsWith('--repo='))) {
    throw new SnapError('SNAP_USAGE', "give --repo before 'schedule' (snap --repo DIR schedule add ...): the schedule records the repository itself");
  }
  const secret = secretOptions(command);
  if (secret.length > 0) throw new SnapError('SNAP_USAGE', `${secret[0]} would be written into the unit or crontab in clear; a schedule never holds a secret`);
  const bad = command.find(hasEscapedBytes);
  if (bad !== undefined) throw new SnapError('SNAP_USAGE', `the argument '${displayPath(bad)}' is not UTF-8, which a unit file or crontab cannot hold`);
}

/**
 * The command line the scheduler runs: this node with the heap flags it runs with (bin/snap's), this
 * snap, the repository and options resolved now.
 */
function scheduledArgv(ctx: Ctx, command: string[]): string[] {
  const script = fs.realpathSync(process.argv[1]!);
  const globals = ['--repo', ctx.repoPath().path];
  const appendOnly = ctx.opts.appendOnly === true || !['', '0', undefined].includes(process.env.SNAP_APPEND_ONLY);
  if (appendOnly) globals.push('--append-only');
  globals.push('--lock-wait', ctx.opts.lockWait ?? SCHEDULED_LOCK_WAIT);
  // An encrypted repository's password source (a file's path or a command, never the password):
  // the scheduled run reads it when it starts.
  if (ctx.opts.passwordFile !== undefined) globals.push('--password-file', path.resolve(ctx.cwd, ctx.opts.passwordFile));
  if (ctx.opts.passwordCommand !== undefined) globals.push('--password-command', ctx.opts.passwordCommand);
  const heap = process.execArgv.filter((a) => /^--(max-(semi|old)-space-size|heap-growing-percent)=\d+$/.test(a));
  return [process.execPath, ...heap, script, ...globals, ...command];
}

function noScheduler(): SnapError {
  return new SnapError('SNAP_USAGE', "no scheduler found: systemd does not run this machine and there is no 'crontab' program; --print shows the units to install by hand, --via systemd|cron picks one");
}

async function add(ctx: Ctx, name: string, command: string[], o: AddFlags): Promise<void> {
  checkScheduleName(name);
  checkCommand(command);
  const cal: Calendar = parseEvery(o.every, o.at);
  const via: Via | undefined = chooseVia(o.via) ?? (o.print ? 'systemd' : undefined);
  if (!via) throw noScheduler();
  if (via === 'cron') toCron(cal); // refuses what cron cannot say, before anything is written
  const spec: ScheduleSpec = { name, every: o.every, at: o.at, argv: scheduledArgv(ctx, command), cwd: ctx.cwd };
  // A remote repository: where the scheduled run finds its credentials is said, never written.
  const creds = scheduledCredentials(ctx.repoPath().location, process.env);
  if (creds?.warning) ctx.sink.warn?.({ code: 'SNAP_USAGE', message: creds.warning });
  if (via === 'systemd') return addSystemd(ctx, spec, cal, o, creds?.note);
  return addCron(ctx, spec, cal, o, creds?.note);
}

async function addSystemd(ctx: Ctx, spec: ScheduleSpec, cal: Calendar, o: AddFlags, credentials?: string): Promise<void> {
  const f = unitFiles(unitDir(), spec.name);
  const timer = timerUnit(spec, cal);
  const service = serviceUnit(spec);
  const start = [`systemctl --user daemon-reload`, `systemctl --user enable --now ${unitBase(spec.name)}.timer`];
  if (o.print) {
    if (ctx.json) ctx.out(JSON.stringify({ name: spec.name, via: 'systemd', onCalendar: toOnCalendar(cal), files: [{ path: f.timer, content: timer }, { path: f.service, content: service }], then: start, ...withCredentials(credentials) }, null, 2));
    else ctx.out(`# ${displayPath(f.timer)}\n${timer}\n# ${displayPath(f.service)}\n${service}\n# then: ${start.join(' && ')}${credentials ? `\n# credentials: ${credentials}` : ''}`);
    return;
  }
  if (fs.existsSync(f.timer) && !o.force) throw new SnapError('SNAP_EXISTS', `a schedule named '${spec.name}' exists (${displayPath(f.timer)}); --force replaces it, 'snap schedule remove ${spec.name}' removes it`);
  // The service first: a timer never points at a unit that is not there yet.
  await writeFileAtomic(f.service, service);
  await writeFileAtomic(f.timer, timer);
  let started = false;
  let problem = '';
  if (userManagerReachable()) {
    const reload = systemctlUser(['daemon-reload']);
    const enable = reload.ok ? systemctlUser(['enable', '--now', `${unitBase(spec.name)}.timer`]) : reload;
    started = enable.ok;
    problem = enable.message;
  } else problem = "systemd's user manager is not reachable from here (no user session bus)";
  if (ctx.json) ctx.out(JSON.stringify({ name: spec.name, via: 'systemd', onCalendar: toOnCalendar(cal), files: [f.timer, f.service], started, then: started ? [] : start, ...withCredentials(credentials) }, null, 2));
  else {
    ctx.out(`schedule '${spec.name}': wrote ${displayPath(f.timer)} and ${displayPath(f.service)} (OnCalendar=${toOnCalendar(cal).join(' and ')}, Persistent=true)`);
    if (credentials) ctx.out(`credentials: ${credentials}`);
    if (started) ctx.out(`enabled and started ${unitBase(spec.name)}.timer; 'systemctl --user list-timers' shows the next run`);
    else ctx.out(`not started: ${problem}. To start it, run in your session:\n  ${start.join(' && ')}\nand, for it to run while you are logged out: loginctl enable-linger "$USER"`);
  }
}

async function addCron(ctx: Ctx, spec: ScheduleSpec, cal: Calendar, o: AddFlags, credentials?: string): Promise<void> {
  const lines = cronEntry(spec, cal);
  if (o.print) {
    if (ctx.json) ctx.out(JSON.stringify({ name: spec.name, via: 'cron', cron: toCron(cal), crontab: lines, ...withCredentials(credentials) }, null, 2));
    else ctx.out(`# add to your crontab (crontab -e):\n${lines.join('\n')}${credentials ? `\n# credentials: ${credentials}` : ''}`);
    return;
  }
  const current = readCrontab();
  const without = cronWithout(current, spec.name);
  if (without.found && !o.force) throw new SnapError('SNAP_EXISTS', `a schedule named '${spec.name}' is in your crontab; --force replaces it, 'snap schedule remove ${spec.name}' removes it`);
  const base = without.text.replace(/\n*$/, '');
  writeCrontab(`${base === '' ? '' : `${base}\n`}${lines.join('\n')}\n`);
  if (ctx.json) ctx.out(JSON.stringify({ name: spec.name, via: 'cron', cron: toCron(cal), crontab: lines, ...withCredentials(credentials) }, null, 2));
  else {
    ctx.out(`schedule '${spec.name}': added to your crontab (${toCron(cal)}); cron runs it while the machine is on (a run missed while it is off is not caught up)`);
    if (credentials) ctx.out(`credentials: ${credentials}`);
  }
}

/** The `credentials` field of --json output (absent for a local repository). */
function withCredentials(note: string | undefined): { credentials?: string } {
  return note ? { credentials: note } : {};
}

interface Listed extends ScheduleSpec {
  via: Via;
  when: string;
}

function listAll(ctx: Ctx, via: string | undefined): Listed[] {
  const out: Listed[] = [];
  const when = (s: ScheduleSpec, v: Via): string => {
    try {
      const c = parseEvery(s.every, s.at);
      return v === 'cron' ? toCron(c) : toOnCalendar(c).join(' + ');
    } catch {
      return s.every;
    }
  };
  if (via !== 'cron') for (const s of systemdSchedules(unitDir())) out.push({ ...s, via: 'systemd', when: when(s, 'systemd') });
  if (via !== 'systemd' && onPath('crontab')) {
    let tab = '';
    try {
      tab = readCrontab();
    } catch (e) {
      // cron asked for by name must answer; otherwise the systemd schedules are still worth showing.
      if (via === 'cron') throw e;
      ctx.sink.warn?.({ code: e instanceof SnapError ? e.code : 'SNAP_IO', message: `the crontab could not be read: ${e instanceof Error ? e.message : String(e)}` });
    }
    for (const s of cronSchedules(tab)) out.push({ ...s, via: 'cron', when: when(s, 'cron') });
  }
  return out;
}

async function list(ctx: Ctx, o: { via?: string }): Promise<void> {
  if (o.via !== undefined) chooseVia(o.via);
  const all = listAll(ctx, o.via === 'auto' ? undefined : o.via);
  if (ctx.json) return ctx.out(JSON.stringify(all.map((s) => ({ name: s.name, via: s.via, every: s.every, at: s.at ?? null, when: s.when, command: s.argv, cwd: s.cwd })), null, 2));
  if (all.length === 0) return ctx.out('no schedules');
  const rows = [['Name', 'Via', 'Every', 'When', 'Command']];
  for (const s of all) rows.push([s.name, s.via, s.at ? `${s.every} at ${s.at}` : s.every, s.when, `snap ${s.argv.slice(2).map(displayPath).join(' ')}`]);
  ctx.out(table(rows));
}

async function remove(ctx: Ctx, name: string, o: { via?: string }): Promise<void> {
  checkScheduleName(name);
  if (o.via !== undefined) chooseVia(o.via);
  const done: string[] = [];
  if (o.via !== 'cron') {
    const f = unitFiles(unitDir(), name);
    if (systemdSchedules(unitDir()).some((s) => s.name === name)) {
      const reachable = userManagerReachable();
      if (reachable) systemctlUser(['disable', '--now', `${unitBase(name)}.timer`]);
      for (const p of [f.wants, f.timer, f.service]) fs.rmSync(p, { force: true });
      if (reachable) systemctlUser(['daemon-reload']);
      done.push(reachable ? `removed ${displayPath(f.timer)} and its service, stopped and disabled the timer` : `removed ${displayPath(f.timer)} and its service; systemd's user manager is not reachable from here: run 'systemctl --user daemon-reload' in your session`);
    }
  }
  if (o.via !== 'systemd' && onPath('crontab')) {
    const current = readCrontab();
    const without = cronWithout(current, name);
    if (without.found) {
      writeCrontab(without.text);
      done.push('removed its crontab entry');
    }
  }
  if (done.length === 0) throw new SnapError('SNAP_NOT_FOUND', `no schedule named '${name}' ('snap schedule list' shows them)`);
  if (ctx.json) ctx.out(JSON.stringify({ name, removed: done }));
  else ctx.out(`schedule '${name}': ${done.join('; ')}`);
}

export function registerSchedule(program: Command, run: (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>): void {
  const s = program.command('schedule').description('run snap at set times through systemd timers or cron (docs/automation.md)');
  s.command('add')
    .description('schedule a command: snap schedule add NAME --every daily --at 02:00 -- create ~/Documents')
    .argument('<name>', 'the schedule\'s name (letters, digits, - and _): the units are snap-NAME.timer and .service')
    .argument('[command...]', "after '--': the snap command to run (create, forget, gc, check or drill) and its arguments")
    .requiredOption('--every <when>', "hourly, daily, weekly, monthly, a 5-field cron expression ('30 2 * * *') or a systemd calendar ('Mon..Fri 02:30')")
    .option('--at <time>', "with hourly/daily/weekly/monthly: the time of day ('02:30'; for hourly the minute, ':15')")
    .option('--via <scheduler>', 'auto (systemd where it runs the machine, else cron), systemd or cron', 'auto')
    .option('--print', 'show what would be installed, install nothing')
    .option('--force', 'replace a schedule of the same name')
    .action(async (name: string, command: string[], o: AddFlags, cmd: Command) => run((ctx) => add(ctx, name, command, o), cmd));
  s.command('list')
    .description('the schedules snap installed (systemd units and crontab entries)')
    .option('--via <scheduler>', 'only systemd or only cron')
    .action(async (o: { via?: string }, cmd: Command) => run((ctx) => list(ctx, o), cmd));
  s.command('remove')
    .description('stop and remove a schedule')
    .argument('<name>', 'the schedule\'s name')
    .option('--via <scheduler>', 'only from systemd or only from cron')
    .action(async (name: string, o: { via?: string }, cmd: Command) => run((ctx) => remove(ctx, name, o), cmd));
}
