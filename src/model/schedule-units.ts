// What `snap schedule add` installs (docs/automation.md, "Schedule"): a systemd user timer and
// service, or a crontab entry, as text. Pure: the CLI decides where they go and installs them.
// Each carries a marker line with the schedule as JSON, which `schedule list` and `remove` read:
// snap only ever lists or removes what it wrote.
import { SnapError } from '../core/errors.js';
import { type Calendar, toCron, toOnCalendar } from './schedule.js';

export const MARKER = '# snap-schedule:';

/** What a schedule is, as recorded in its marker. */
export interface ScheduleSpec {
  name: string;
  every: string;
  at?: string;
  /** The full command line run: the program (node), the script, snap's arguments. */
  argv: string[];
  cwd: string;
}

/** Names become unit and file names: letters, digits, `-` and `_` only, so no path, no template `@`. */
export function checkScheduleName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(name)) {
    throw new SnapError('SNAP_USAGE', `schedule name '${name}' is not allowed: use 1-64 letters, digits, '-' and '_', starting with a letter or digit (it becomes the file name snap-NAME.timer)`);
  }
}

export const unitBase = (name: string): string => `snap-${name}`;

/** One argument for ExecStart= (systemd.service(5), "Command lines"): double-quoted, `%` and `$` doubled. */
export function systemdWord(a: string): string {
  if (/[\x00-\x08\x0b-\x1f\x7f]/.test(a)) throw new SnapError('SNAP_USAGE', `an argument holds a control character a unit file cannot carry: ${JSON.stringify(a)}`);
  return `"${a.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/%/g, '%%').replace(/\$/g, '$$$$')}"`;
}

/** A path in a unit setting that is not a command line (WorkingDirectory=): specifiers escaped, no quotes. */
function systemdPath(p: string): string {
  if (/[\x00-\x1f\x7f]/.test(p)) throw new SnapError('SNAP_USAGE', `the folder ${JSON.stringify(p)} holds a control character a unit file cannot carry`);
  return p.replace(/%/g, '%%');
}

/** One argument for /bin/sh in a crontab line: single-quoted; cron's `%` (a newline to cron) escaped. */
export function cronWord(a: string): string {
  if (/[\x00-\x1f\x7f]/.test(a)) throw new SnapError('SNAP_USAGE', `an argument holds a control character a crontab line cannot carry: ${JSON.stringify(a)}`);
  return `'${a.replace(/'/g, `'\\''`)}'`.replace(/%/g, '\\%');
}

const markerLine = (s: ScheduleSpec): string => `${MARKER} ${JSON.stringify({ name: s.name, every: s.every, at: s.at, argv: s.argv, cwd: s.cwd })}`;

export function parseMarker(line: string): ScheduleSpec | undefined {
  if (!line.startsWith(MARKER)) return undefined;
  try {
    const o = JSON.parse(line.slice(MARKER.length)) as Partial<ScheduleSpec>;
    if (typeof o.name !== 'string' || typeof o.every !== 'string' || !Array.isArray(o.argv) || typeof o.cwd !== 'string') return undefined;
    return { name: o.name, every: o.every, at: typeof o.at === 'string' ? o.at : undefined, argv: o.argv.map(String), cwd: o.cwd };
  } catch {
    return undefined;
  }
}

const describe = (s: ScheduleSpec): string => `snap schedule ${s.name}: snap ${s.argv.slice(2).join(' ')}`.replace(/[\x00-\x1f\x7f%$\\]/g, '_').slice(0, 200);

/** What bin/snap puts into the environment of the node it starts, for a schedule that starts node itself. */
const LAUNCHER_ENV = ['MALLOC_ARENA_MAX=2', 'SNAP_LAUNCHER_ARENAS=1'];

export function timerUnit(s: ScheduleSpec, c: Calendar): string {
  return [
    `# Written by 'snap schedule add ${s.name}'; remove with 'snap schedule remove ${s.name}'.`,
    markerLine(s),
    '[Unit]',
    `Description=${describe(s)}`,
    '',
    '[Timer]',
    ...toOnCalendar(c).map((x) => `OnCalendar=${x}`),
    // A run missed while the machine was off or asleep runs once as soon as it is back.
    'Persistent=true',
    `Unit=${unitBase(s.name)}.service`,
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ].join('\n');
}

export function serviceUnit(s: ScheduleSpec): string {
  return [
    `# Written by 'snap schedule add ${s.name}'; remove with 'snap schedule remove ${s.name}'.`,
    markerLine(s),
    '[Unit]',
    `Description=${describe(s)}`,
    '',
    '[Service]',
    'Type=oneshot',
    `WorkingDirectory=${systemdPath(s.cwd)}`,
    // A backup should not slow down the machine's owner.
    'Nice=10',
    'IOSchedulingClass=idle',
    // As bin/snap sets them (two malloc arenas; the CLI takes both out again for its children).
    `Environment=${LAUNCHER_ENV.join(' ')}`,
    `ExecStart=${s.argv.map(systemdWord).join(' ')}`,
    '',
  ].join('\n');
}

/** The crontab lines of a schedule: the marker, then the entry. */
export function cronEntry(s: ScheduleSpec, c: Calendar): string[] {
  return [markerLine(s), `${toCron(c)} cd ${cronWord(s.cwd)} && ${LAUNCHER_ENV.join(' ')} ${s.argv.map(cronWord).join(' ')}`];
}

/** A crontab without the entry of `name` (its marker line and the line after it). */
export function cronWithout(crontab: string, name: string): { text: string; found: boolean } {
  const lines = crontab.split('\n');
  const out: string[] = [];
  let found = false;
  for (let i = 0; i < lines.length; i++) {
    const spec = parseMarker(lines[i]!);
    if (spec?.name === name) {
      found = true;
      i++; // and its entry
      continue;
    }
    out.push(lines[i]!);
  }
  return { text: out.join('\n'), found };
}

/** Every snap schedule in a crontab. */
export function cronSchedules(crontab: string): ScheduleSpec[] {
  return crontab.split('\n').flatMap((l) => parseMarker(l) ?? []);
}
