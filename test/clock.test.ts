// One clock (issue 17): the CLI builds it and every wall-clock "now" of a command comes from it, so
// the hidden SNAP_NOW fixes all of them: a new snapshot's time, retention's "within", date words,
// the lock and key records. An unusable SNAP_NOW is a usage error, not a silent fallback.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJson, snap, tmpDir } from './helpers/cli.js';

interface SnapJson {
  id: string;
  time: string;
}

describe('SNAP_NOW fixes the clock of every command', () => {
  const dir = tmpDir('snap-clock-');
  const repo = path.join(dir, 'repo');
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'a.txt'), 'a\n');
  const run = (args: string[], now?: string) => snap(['--repo', repo, ...args], { env: { TZ: 'UTC', ...(now ? { SNAP_NOW: now } : {}) } });
  const list = (): SnapJson[] => parseJson<SnapJson[]>(run(['--json', 'list']).stdout);

  it('a snapshot made without --time takes its time from SNAP_NOW', () => {
    expect(run(['init', '--no-encryption']).code).toBe(0);
    const c = run(['create', src], '2026-03-10T12:00:00Z');
    expect(c.code, c.stderr).toBe(0);
    expect(list().map((s) => s.time)).toEqual(['2026-03-10T12:00:00.000+00:00']);
  });

  it('forget --keep-within counts back from SNAP_NOW', () => {
    expect(run(['create', src, '--time', '2026-03-01T12:00:00Z']).code).toBe(0);
    expect(run(['create', src, '--time', '2026-03-09T12:00:00Z']).code).toBe(0);
    // Two days before 2026-03-11: the snapshots of 03-09 and 03-10 are within, 03-01 is not. By
    // the real clock (months later) none would be.
    const f = run(['--json', 'forget', '--keep-within', '2d'], '2026-03-11T00:00:00Z');
    expect(f.code, f.stderr).toBe(0);
    expect(list().map((s) => s.time)).toEqual(['2026-03-09T12:00:00.000+00:00', '2026-03-10T12:00:00.000+00:00']);
  });

  it('date words and latest-before resolve against SNAP_NOW', () => {
    const ls = run(['--json', 'list', '--until', '2 days ago'], '2026-03-11T18:00:00Z');
    expect(ls.code, ls.stderr).toBe(0);
    expect(parseJson<SnapJson[]>(ls.stdout).map((s) => s.time)).toEqual(['2026-03-09T12:00:00.000+00:00']);
  });

  it('a SNAP_NOW that is not a time is a usage error naming it', () => {
    const c = run(['create', src], 'next tuesday');
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/SNAP_NOW is not an ISO 8601 time: 'next tuesday' \[SNAP_USAGE\]/);
    expect(list()).toHaveLength(2);
  });
});
