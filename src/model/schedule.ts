// When a scheduled command runs (docs/automation.md, "Schedule"): `hourly`, `daily`, `weekly`,
// `monthly`, a 5-field cron expression, or a systemd calendar expression (OnCalendar=), parsed
// into one form and written out for both systemd timers and cron. Every field is a list of
// values (ranges and steps expanded), so what one scheduler accepts the other gets exactly.
import { SnapError } from '../core/errors.js';

/** `*` or the sorted values a field matches. */
export type Field = '*' | number[];

export interface Calendar {
  minute: Field;
  hour: Field;
  /** Day of the month 1-31. */
  dom: Field;
  /** Month 1-12. */
  month: Field;
  /** Day of the week 0-6, Sunday 0. */
  dow: Field;
  /**
   * When both `dom` and `dow` are restricted: cron runs on either (`or`, cron's rule), a systemd
   * calendar expression on days that match both (`and`).
   */
  days: 'or' | 'and';
}

const RANGES = { minute: [0, 59], hour: [0, 23], dom: [1, 31], month: [1, 12], dow: [0, 7] } as const;
type FieldName = keyof typeof RANGES;
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

const EXAMPLES = "hourly, daily, weekly, monthly, a cron expression ('30 2 * * *', '*/15 * * * 1-5') or a systemd calendar ('Mon..Fri *-*-* 02:30', '*-*-01 04:00')";

function usage(msg: string): SnapError {
  return new SnapError('SNAP_USAGE', `--every: ${msg} (examples: ${EXAMPLES})`);
}

function num(text: string, name: FieldName, lo: number, hi: number, what: string): number {
  let v: number;
  if (/^\d{1,2}$/.test(text)) v = Number(text);
  else if (name === 'dow' && DAYS.some((d) => d.toLowerCase() === text.toLowerCase().slice(0, 3)) && /^[a-z]{3,9}$/i.test(text)) {
    v = DAYS.findIndex((d) => d.toLowerCase() === text.toLowerCase().slice(0, 3));
  } else throw usage(`'${text}' in ${what} is not a number`);
  if (v < lo || v > hi) throw usage(`${v} in ${what} is out of range (${lo}-${hi})`);
  return v;
}

/** One field: `*`, `N`, `A-B` (cron) or `A..B` (systemd), each optionally `/STEP`, comma-separated. */
function field(text: string, name: FieldName, rangeSep: '-' | '..', what: string): Field {
  const [lo, hi] = RANGES[name];
  if (text === '*') return '*';
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const [base, stepText, extra] = part.split('/');
    if (extra !== undefined || base === undefined || base === '') throw usage(`'${part}' in ${what} is not a value, range or step`);
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1 || (stepText !== undefined && !/^\d+$/.test(stepText))) throw usage(`step '${stepText}' in ${what} is not a positive number`);
    let a: number;
    let b: number;
    if (base === '*') [a, b] = [lo, name === 'dow' ? 6 : hi];
    else if (base.includes(rangeSep)) {
      const [x, y, z] = base.split(rangeSep);
      if (z !== undefined || !x || !y) throw usage(`'${base}' in ${what} is not a range`);
      a = num(x, name, lo, hi, what);
      b = num(y, name, lo, hi, what);
      if (b < a) throw usage(`range '${base}' in ${what} runs backwards`);
    } else {
      a = num(base, name, lo, hi, what);
      // cron: `5/10` means 5, 15, 25, ... to the end of the range; systemd the same.
      b = stepText === undefined ? a : name === 'dow' ? 6 : hi;
    }
    for (let v = a; v <= b; v += step) out.add(name === 'dow' && v === 7 ? 0 : v);
  }
  const values = [...out].sort((x, y) => x - y);
  const full = name === 'dow' ? 7 : hi - lo + 1;
  return values.length === full ? '*' : values;
}

function parseCron(text: string): Calendar {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== 5) throw usage(`'${text}' is not 5 cron fields`);
  const [mi, h, dom, mon, dow] = parts as [string, string, string, string, string];
  return {
    minute: field(mi, 'minute', '-', 'the minute field'),
    hour: field(h, 'hour', '-', 'the hour field'),
    dom: field(dom, 'dom', '-', 'the day-of-month field'),
    month: field(mon, 'month', '-', 'the month field'),
    dow: field(dow, 'dow', '-', 'the day-of-week field'),
    days: 'or',
  };
}

/** systemd's calendar form: `[WEEKDAYS] [[YYYY-]MM-DD] [HH:MM[:SS]]` (systemd.time(7)), without time zones. */
function parseSystemd(text: string): Calendar {
  let words = text.trim().split(/\s+/);
  let dow: Field = '*';
  if (words[0] && /^[A-Za-z]/.test(words[0])) {
    dow = field(words[0].replace(/\.\./g, '..'), 'dow', '..', 'the weekday');
    words = words.slice(1);
  }
  let dom: Field = '*';
  let month: Field = '*';
  let minute: Field = [0];
  let hour: Field = [0];
  for (const w of words) {
    if (w.includes('-') && !w.includes(':')) {
      const p = w.split('-');
      if (p.length === 3) {
        if (p[0] !== '*') throw usage(`a year ('${p[0]}') cannot be scheduled; use *-MM-DD`);
        p.shift();
      }
      if (p.length !== 2) throw usage(`'${w}' is not a date (MM-DD or *-MM-DD)`);
      month = field(p[0]!, 'month', '..', 'the month');
      dom = field(p[1]!, 'dom', '..', 'the day of the month');
    } else if (w.includes(':')) {
      const p = w.split(':');
      if (p.length === 3) {
        if (!/^0*$/.test(p[2]!) && p[2] !== '00') throw usage(`seconds ('${p[2]}') cannot be scheduled: snap schedules to the minute`);
        p.pop();
      }
      if (p.length !== 2) throw usage(`'${w}' is not a time (HH:MM)`);
      hour = field(p[0]!, 'hour', '..', 'the hour');
      minute = field(p[1]!, 'minute', '..', 'the minute');
    } else throw usage(`'${w}' is not a weekday, date or time`);
  }
  return { minute, hour, dom, month, dow, days: 'and' };
}

/** `HH:MM` for daily and longer, `:MM` or `MM` for hourly. */
function parseAt(at: string, hourly: boolean): { hour: number; minute: number } {
  const m = hourly ? /^:?(\d{1,2})$/.exec(at) : /^(\d{1,2}):(\d{2})$/.exec(at);
  const bad = (): SnapError => new SnapError('SNAP_USAGE', `--at '${at}' is not ${hourly ? "a minute of the hour (':15')" : "a time of day ('02:30')"}`);
  if (!m) throw bad();
  const hour = hourly ? 0 : Number(m[1]);
  const minute = Number(hourly ? m[1] : m[2]);
  if (hour > 23 || minute > 59) throw bad();
  return { hour, minute };
}

export function parseEvery(every: string, at?: string): Calendar {
  const e = every.trim();
  const simple = /^(hourly|daily|weekly|monthly)$/i.exec(e);
  if (!simple && at !== undefined) throw new SnapError('SNAP_USAGE', `--at goes with --every hourly, daily, weekly or monthly; put the time into '${every}' instead`);
  if (simple) {
    const kind = simple[1]!.toLowerCase();
    const { hour, minute } = at !== undefined ? parseAt(at, kind === 'hourly') : { hour: 0, minute: 0 };
    const base: Calendar = { minute: [minute], hour: [hour], dom: '*', month: '*', dow: '*', days: 'or' };
    if (kind === 'hourly') return { ...base, hour: '*' };
    if (kind === 'weekly') return { ...base, dow: [1] };
    if (kind === 'monthly') return { ...base, dom: [1] };
    return base;
  }
  if (e === '') throw usage('it is empty');
  const words = e.split(/\s+/);
  // Five fields of digits, '*', ',', '-' and '/' is cron; anything else is systemd's form.
  if (words.length === 5 && words.every((w) => /^[\d*,\/-]+$/.test(w))) return parseCron(e);
  return parseSystemd(e);
}

const list = (f: Field, fmt: (n: number) => string = String): string => (f === '*' ? '*' : f.map(fmt).join(','));
const two = (n: number): string => String(n).padStart(2, '0');

/** The OnCalendar= values (one, or two when cron's either-day rule needs both). */
export function toOnCalendar(c: Calendar): string[] {
  const time = `${list(c.hour, two)}:${list(c.minute, two)}:00`;
  const date = (dom: Field): string => `*-${list(c.month, two)}-${list(dom, two)}`;
  const days = (dow: Field): string => (dow === '*' ? '' : `${dow.map((d) => DAYS[d]).join(',')} `);
  if (c.dom !== '*' && c.dow !== '*' && c.days === 'or') return [`${date(c.dom)} ${time}`, `${days(c.dow)}${date('*')} ${time}`];
  return [`${days(c.dow)}${date(c.dom)} ${time}`];
}

/** The five cron fields; cron cannot say "a weekday and a day of the month both". */
export function toCron(c: Calendar): string {
  if (c.dom !== '*' && c.dow !== '*' && c.days === 'and') {
    throw new SnapError('SNAP_USAGE', '--every: this calendar needs a weekday and a day of the month at once, which cron cannot express (cron runs when either matches); use --via systemd, or a cron expression');
  }
  return [list(c.minute), list(c.hour), list(c.dom), list(c.month), list(c.dow)].join(' ');
}
