// Where `snap schedule` puts things and how it tells the scheduler: systemd user units under
// $XDG_CONFIG_HOME/systemd/user (then `systemctl --user daemon-reload` and `enable --now` when a
// user manager answers), or the user's crontab through the real `crontab -l` / `crontab -`.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { writeFileDurable } from '../core/durable.js';
import * as os from 'node:os';
import * as path from 'node:path';
import { SnapError } from '../core/errors.js';
import { randomHex } from '../core/ids.js';
import { parseMarker, type ScheduleSpec, unitBase } from '../model/schedule-units.js';

export type Via = 'systemd' | 'cron';

export function unitDir(): string {
  const xdg = process.env.XDG_CONFIG_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.config'), 'systemd', 'user');
}

export function onPath(program: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && fs.existsSync(path.join(d, program)));
}

/** systemd runs this machine (sd_booted(3): /run/systemd/system exists) and systemctl is here. */
export function systemdBooted(): boolean {
  return fs.existsSync('/run/systemd/system') && onPath('systemctl');
}

/** `--via auto`: systemd where it runs the machine, else cron if installed. */
export function chooseVia(given: string | undefined): Via | undefined {
  if (given === 'systemd' || given === 'cron') return given;
  if (given !== undefined && given !== 'auto') throw new SnapError('SNAP_USAGE', `--via '${given}' is not one of auto, systemd, cron`);
  if (systemdBooted()) return 'systemd';
  if (onPath('crontab')) return 'cron';
  return undefined;
}

/** Whether `systemctl --user` reaches a running user manager (it needs the session's bus). */
export function userManagerReachable(): boolean {
  if (!onPath('systemctl')) return false;
  const r = spawnSync('systemctl', ['--user', 'show-environment'], { stdio: 'ignore', timeout: 10_000 });
  return r.status === 0;
}

export function systemctlUser(args: string[]): { ok: boolean; message: string } {
  const r = spawnSync('systemctl', ['--user', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { ok: r.status === 0, message: (r.stderr || r.stdout || r.error?.message || '').trim() };
}

/** Write a file durably (core/durable.ts: temporary name, fsync, rename, folder fsync): a crash leaves the old unit or the new one. */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const dir = path.dirname(file);
  await writeFileDurable({ dir, tmp: path.join(dir, `.tmp-snap-${randomHex(8)}`), dest: file, mode: 0o644 }, text);
}

export function unitFiles(dir: string, name: string): { timer: string; service: string; wants: string } {
  const base = unitBase(name);
  return { timer: path.join(dir, `${base}.timer`), service: path.join(dir, `${base}.service`), wants: path.join(dir, 'timers.target.wants', `${base}.timer`) };
}

/** Schedules snap wrote as systemd units in `dir` (those whose timer carries snap's marker). */
export function systemdSchedules(dir: string): ScheduleSpec[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: ScheduleSpec[] = [];
  for (const n of names.filter((x) => /^snap-.*\.timer$/.test(x)).sort()) {
    const text = fs.readFileSync(path.join(dir, n), 'utf8');
    for (const line of text.split('\n')) {
      const spec = parseMarker(line);
      if (spec && `snap-${spec.name}.timer` === n) out.push(spec);
    }
  }
  return out;
}

/** The user's crontab ('' when there is none). */
export function readCrontab(): string {
  const r = spawnSync('crontab', ['-l'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw new SnapError('SNAP_IO', `could not run 'crontab -l': ${r.error.message}`);
  if (r.status === 0) return r.stdout;
  if (/no crontab/i.test(r.stderr)) return '';
  throw new SnapError('SNAP_IO', `'crontab -l' failed: ${r.stderr.trim() || `exit status ${r.status}`}`);
}

export function writeCrontab(text: string): void {
  const body = text.endsWith('\n') || text === '' ? text : `${text}\n`;
  const r = spawnSync('crontab', ['-'], { input: body, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw new SnapError('SNAP_IO', `could not run 'crontab -': ${r.error.message}`);
  if (r.status !== 0) throw new SnapError('SNAP_IO', `'crontab -' refused the new crontab: ${r.stderr.trim() || `exit status ${r.status}`}`);
}
