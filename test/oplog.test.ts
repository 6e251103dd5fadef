// The operation log (docs/automation.md, docs/format.md "Operation log"): one record per command
// that changed the repository, written by the real CLI in real processes; a failed and an
// interrupted command are recorded, a command killed with SIGKILL leaves nothing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { snap, snapAsync, tmpDir } from './helpers/cli.js';
import { LocalBackend } from '../src/backend/local.js';
import { noChanges, RecordingBackend } from '../src/backend/recording.js';
import { decodeLogRecord, encodeLogRecord, type LogRecord, logName, logNameTime, redactArgs } from '../src/model/oplog.js';
import { appendLogRecord, readLog } from '../src/repo/oplog.js';

interface Rec extends LogRecord {
  id: string;
}

const lockFiles = (repo: string): string[] => (fs.existsSync(path.join(repo, 'locks')) ? fs.readdirSync(path.join(repo, 'locks')).filter((n) => !n.startsWith('.')) : []);

async function until(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Start snap, wait until it holds the repository lock, send `sig`, wait for its end. */
async function signalled(args: string[], repo: string, sig: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const child = snapAsync(args);
  child.stdout.resume();
  child.stderr.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
  await until('the lock of the command', () => lockFiles(repo).length > 0);
  child.kill(sig);
  return exited;
}

function log(repo: string, ...extra: string[]): Rec[] {
  const r = snap(['--repo', repo, '--json', 'log', ...extra]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as Rec[];
}

describe('operation log', () => {
  it('holds exactly the commands that ran: failed and interrupted ones too, nothing for kill -9 or read-only commands', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'a'), 'first');
    const at = (...a: string[]) => snap(['--repo', repo, ...a]);

    expect(at('init').code).toBe(0);
    expect(at('create', '--tag', 'one', src).code).toBe(0);
    expect(at('create', path.join(base, 'missing')).code).toBe(1); // failed: SNAP_NOT_FOUND
    expect(at('list').code).toBe(0); // read-only: not logged
    expect(at('check').code).toBe(0); // read-only: not logged
    // Interrupted: a stream backup of a command that would run for a minute, stopped by SIGINT.
    const sigint = await signalled(['--repo', repo, 'create', '--stdin-from-command', '--', 'sleep', '60'], repo, 'SIGINT');
    expect(sigint.code).toBe(130);
    // Killed: no chance to write anything (docs/automation.md: no record, by choice).
    const killed = await signalled(['--repo', repo, 'create', '--stdin-from-command', '--', 'sh', '-c', 'sleep 3'], repo, 'SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    fs.writeFileSync(path.join(src, 'b'), 'second file');
    const second = JSON.parse(at('--json', 'create', src).stdout) as { id: string };
    const first = (JSON.parse(at('--json', 'list').stdout) as { id: string }[])[0]!.id;
    expect(at('forget', first).code).toBe(0);
    expect(at('gc').code).toBe(0);
    expect(at('tag', '--add', 'kept', second.id).code).toBe(0);
    expect(at('forget', '--keep-last', 'x').code).toBe(2); // usage error inside the command: logged as failed

    const recs = log(repo);
    expect(recs.map((r) => [r.command, r.result, r.exitCode, r.error?.code])).toEqual([
      ['init', 'ok', 0, undefined],
      ['create', 'ok', 0, undefined],
      ['create', 'failed', 1, 'SNAP_NOT_FOUND'],
      ['create', 'interrupted', 130, 'SNAP_INTERRUPTED'],
      ['create', 'ok', 0, undefined],
      ['forget', 'ok', 0, undefined],
      ['gc', 'ok', 0, undefined],
      ['tag', 'ok', 0, undefined],
      ['forget', 'failed', 2, 'SNAP_USAGE'],
    ]);
    const [init, c1, fail, intr, c2, forget, gc, tag] = recs as [Rec, Rec, Rec, Rec, Rec, Rec, Rec, Rec];
    expect(init.args).toEqual(['--repo', repo, 'init']);
    expect(c1.args).toEqual(['--repo', repo, 'create', '--tag', 'one', src]);
    expect(c1.snapshotsAdded).toEqual([first]);
    expect(c1.bytesAdded).toBeGreaterThan(0);
    expect(fail.snapshotsAdded).toEqual([]);
    expect(fail.error?.message).toMatch(/missing/);
    expect(intr.snapshotsAdded).toEqual([]);
    expect(c2.snapshotsAdded).toEqual([second.id]);
    expect(forget.snapshotsRemoved).toEqual([first]);
    expect(forget.bytesFreed).toBeGreaterThan(0);
    expect(gc.bytesFreed).toBeGreaterThan(0);
    expect(tag.snapshotsRemoved).toEqual([second.id]);
    expect(tag.snapshotsAdded).toHaveLength(1);
    for (const r of recs) {
      expect(r.pid).toBeGreaterThan(0);
      expect(Date.parse(r.end)).toBeGreaterThanOrEqual(Date.parse(r.start));
      expect(r.host).not.toBe('');
    }
    // gc left the log alone; check reads it and finds nothing wrong.
    expect(fs.readdirSync(path.join(repo, 'log')).filter((n) => !n.startsWith('.'))).toHaveLength(recs.length);
    expect(at('check').stdout).toMatch(/no damage found/);
    // A temporary file of an interrupted log write is not a record: log, check and gc pass it by.
    fs.writeFileSync(path.join(repo, 'log', '.tmp-0123456789abcdef'), '{"format":"snap-lo');
    expect(log(repo)).toHaveLength(recs.length);
    expect(at('check').stdout).toMatch(/no damage found/);
    // --since
    expect(log(repo, '--since', new Date(Date.parse(c2.start)).toISOString()).map((r) => r.command)).toEqual(['create', 'forget', 'gc', 'tag', 'forget']);
    // text form
    const text = at('log').stdout;
    expect(text).toMatch(/^Start +Took +Command +Result/);
    expect(text).toMatch(/failed \(1\) SNAP_NOT_FOUND/);
    expect(text).toMatch(/interrupted \(130\) SNAP_INTERRUPTED/);
  }, 180_000);

  it('a damaged record: check reports it, log warns (exit 3), repair moves it to quarantine/log/', () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const [name] = fs.readdirSync(path.join(repo, 'log'));
    fs.writeFileSync(path.join(repo, 'log', name!), '{"format":"snap-log","v":1');
    const c = snap(['--repo', repo, 'check']);
    expect(c.code).toBe(1);
    expect(c.stdout).toContain(`log record log/${name} is damaged: not JSON`);
    const l = snap(['--repo', repo, 'log']);
    expect(l.code).toBe(3);
    expect(l.stderr).toContain(`warning: log record log/${name} is damaged`);
    const r = snap(['--repo', repo, 'repair']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('moved to quarantine/');
    expect(fs.existsSync(path.join(repo, 'quarantine', 'log', name!))).toBe(true);
    expect(snap(['--repo', repo, 'check']).code).toBe(0);
    expect(log(repo).map((x) => x.command)).toEqual(['repair']); // the repair itself (check changes nothing)
  });

  it('no repository, no record: a command that failed for want of one leaves nothing behind', () => {
    const base = tmpDir();
    const r = snap(['--repo', path.join(base, 'none'), 'gc']);
    expect(r.code).toBe(1);
    expect(fs.existsSync(path.join(base, 'none'))).toBe(false);
  });
});

describe('operation log records', () => {
  const rec: LogRecord = {
    format: 'snap-log', v: 1, command: 'create', args: ['create', '/x'], user: 'u', host: 'h', pid: 7, program: 'snap 0.1.0',
    start: '2026-12-02T19:37:28.026Z', end: '2026-12-02T19:37:29.000Z', result: 'ok', exitCode: 0,
    snapshotsAdded: ['a'.repeat(64)], snapshotsRemoved: [], bytesAdded: 10, bytesFreed: 0,
  };

  it('names sort by start time and carry it', () => {
    const n = logName(new Date(rec.start), '0123456789abcdef');
    expect(n).toBe('log/20261202T193728.026Z-0123456789abcdef');
    expect(logNameTime(n)).toBe(rec.start);
    expect(logNameTime('log/notarecord')).toBeUndefined();
  });

  it('decode accepts what encode writes and unknown fields, refuses wrong types', () => {
    const n = logName(new Date(rec.start), '0123456789abcdef');
    expect(decodeLogRecord(encodeLogRecord(rec), n)).toEqual(rec);
    expect(decodeLogRecord(Buffer.from(JSON.stringify({ ...rec, future: [1] })), n).command).toBe('create');
    for (const bad of [{ ...rec, v: 2 }, { ...rec, pid: -1 }, { ...rec, bytesAdded: 1.5 }, { ...rec, snapshotsAdded: ['xyz'] }, { ...rec, start: 'yesterday' }, { ...rec, error: 'x' }]) {
      expect(() => decodeLogRecord(Buffer.from(JSON.stringify(bad)), n)).toThrow(/SNAP_CORRUPT|damaged/);
    }
    // A name whose time disagrees with the record's start is damage too.
    expect(() => decodeLogRecord(encodeLogRecord(rec), 'log/20200101T000000.000Z-0123456789abcdef')).toThrow(/its name says/);
  });

  it('secrets are removed from the arguments', () => {
    expect(redactArgs(['--password', 'hunter2', 'create', '/x'])).toEqual(['--password', '***', 'create', '/x']);
    expect(redactArgs(['--s3-secret-key=abc', '--token', 't', '--tag', 'keep'])).toEqual(['--s3-secret-key=***', '--token', '***', '--tag', 'keep']);
    expect(redactArgs(['--repo', 's3://bob:pw@host/bucket', '--on-success', 'curl https://u:tok@example.org/x'])).toEqual(['--repo', 's3://bob:***@host/bucket', '--on-success', 'curl https://u:***@example.org/x']);
    // After --, arguments belong to another program and are kept (but URLs still lose passwords).
    expect(redactArgs(['create', '--stdin-from-command', '--', 'pg_dump', '--password', 'postgres://a:b@h/db'])).toEqual(['create', '--stdin-from-command', '--', 'pg_dump', '--password', 'postgres://a:***@h/db']);
  });

  it('append and read through a real LocalBackend; the recording backend counts only real changes', async () => {
    const dir = tmpDir();
    const changes = noChanges();
    const b = new RecordingBackend(new LocalBackend(dir), changes);
    const name = await appendLogRecord(b, rec);
    expect(name).toMatch(/^log\/20261202T193728\.026Z-[0-9a-f]{16}$/);
    expect(changes.changed).toBe(false); // the log itself is not a change it reports
    await b.put(`snapshots/${'b'.repeat(64)}`, Buffer.alloc(100));
    await b.putStream('data/ab/' + 'c'.repeat(64), (async function* () { yield Buffer.alloc(30); yield Buffer.alloc(20); })(), 50);
    await b.put('locks/x', Buffer.alloc(5));
    await b.delete(`snapshots/${'b'.repeat(64)}`);
    await b.delete(`snapshots/${'d'.repeat(64)}`); // absent: nothing freed
    expect(changes).toEqual({ snapshotsAdded: ['b'.repeat(64)], snapshotsRemoved: ['b'.repeat(64)], bytesAdded: 150, bytesFreed: 100, changed: true });
    const entries = await readLog(b);
    expect(entries).toEqual([{ name, record: rec }]);
    expect(fs.readdirSync(path.join(dir, 'log')).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });
});
