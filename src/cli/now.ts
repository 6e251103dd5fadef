// The one clock of a command: built here, handed to the repository (snapshot times, locks, key and
// log records, retention) and to every "now" a command asks (`yesterday`, `3 days ago`, `today`,
// --since). The hidden SNAP_NOW variable (an ISO 8601 instant) fixes it, so end-to-end tests do
// not depend on the wall clock; it is read here only, never below the CLI. Elapsed times (how long
// a step took, how long to wait for a lock) are measured apart from it and stay real.
import { type Clock, fixedClock, systemClock } from '../core/clock.js';
import { SnapError } from '../core/errors.js';

export function cliClock(env: NodeJS.ProcessEnv): Clock {
  const fixed = env.SNAP_NOW;
  if (!fixed) return systemClock;
  const t = Date.parse(fixed);
  if (Number.isNaN(t)) return { now: () => { throw new SnapError('SNAP_USAGE', `SNAP_NOW is not an ISO 8601 time: '${fixed}'`); } };
  return fixedClock(new Date(t));
}
