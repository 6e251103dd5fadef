// Repository locks on a real directory (LocalBackend), with a fake host for liveness.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalBackend } from '../src/backend/local.js';
import { fixedClock, systemClock, type Clock } from '../src/core/clock.js';
import { isSnapError, SnapError } from '../src/core/errors.js';
import type { HostInfo } from '../src/core/host.js';
import { randomHex } from '../src/core/ids.js';
import { decodeLock, encodeLock, type LockOptions, type LockRecord, RepoLock, staleReason } from '../src/repo/lock.js';
import { tmpDir } from './helpers/cli.js';

const host = (pid: number, alive: Set<number> = new Set([pid]), hostname = 'here'): HostInfo => ({
  hostname,
  username: 'u',
  pid,
  uid: 1000,
  isAlive: (p) => alive.has(p),
});

function opts(h: HostInfo, kind: 'shared' | 'exclusive', over: Partial<LockOptions> = {}): LockOptions & { infos: string[] } {
  const infos: string[] = [];
  return { kind, command: kind === 'exclusive' ? 'gc' : 'create', host: h, clock: systemClock, sink: { info: (m) => infos.push(m) }, waitMs: 0, retryMs: 20, infos, ...over };
}

function locks(root: string): string[] {
  return fs.existsSync(path.join(root, 'locks')) ? fs.readdirSync(path.join(root, 'locks')).filter((n) => !n.startsWith('.tmp-')) : [];
}

function plant(root: string, r: Partial<LockRecord>): string {
  const now = new Date().toISOString();
  const rec: LockRecord = { host: 'here', pid: 4242, time: now, refreshed: now, exclusive: true, command: 'gc', ...r };
  const id = randomHex(32);
  fs.mkdirSync(path.join(root, 'locks'), { recursive: true });
  fs.writeFileSync(path.join(root, 'locks', id), encodeLock(rec));
  return id;
}

describe('lock records', () => {
  it('round-trip, and reject what is not a lock', () => {
    const r: LockRecord = { host: 'h', pid: 1, time: '2026-01-01T00:00:00.000Z', refreshed: '2026-01-01T00:00:00.000Z', exclusive: false, command: 'list' };
    expect(decodeLock(encodeLock(r))).toEqual(r);
    expect(decodeLock(Buffer.from('not json'))).toBeUndefined();
    expect(decodeLock(Buffer.from('{"host":"h"}'))).toBeUndefined();
    expect(decodeLock(Buffer.from(JSON.stringify({ ...r, refreshed: 'yesterday' })))).toBeUndefined();
  });

  it('staleness: dead pid on this host, or not refreshed for 30 minutes', () => {
    const now = new Date('2026-06-01T12:00:00Z');
    const rec = (over: Partial<LockRecord>): LockRecord => ({ host: 'here', pid: 7, time: now.toISOString(), refreshed: now.toISOString(), exclusive: true, command: 'gc', ...over });
    const me = host(1, new Set([1, 7]));
    expect(staleReason(rec({}), me, now)).toBeUndefined();
    expect(staleReason(rec({ pid: 8 }), me, now)).toMatch(/pid 8.*no longer running/);
    // Another host's pid says nothing about this host's processes.
    expect(staleReason(rec({ host: 'there', pid: 8 }), me, now)).toBeUndefined();
    expect(staleReason(rec({ host: 'there', refreshed: new Date(now.getTime() - 29 * 60_000).toISOString() }), me, now)).toBeUndefined();
    expect(staleReason(rec({ host: 'there', refreshed: new Date(now.getTime() - 31 * 60_000).toISOString() }), me, now)).toMatch(/not been refreshed/);
  });
});

describe('acquiring locks', () => {
  it('shared locks coexist; exclusive conflicts both ways; release removes the file', async () => {
    const root = tmpDir();
    const b = new LocalBackend(root);
    const h = host(100, new Set([100]));
    const s1 = await RepoLock.acquire(b, opts(h, 'shared'));
    const s2 = await RepoLock.acquire(b, opts(h, 'shared'));
    expect(locks(root)).toHaveLength(2);
    await expect(RepoLock.acquire(b, opts(h, 'exclusive'))).rejects.toSatisfy((e) => isSnapError(e, 'SNAP_LOCKED') && /a shared lock of 'create'/.test((e as Error).message));
    expect(locks(root)).toHaveLength(2); // the failed attempt left nothing behind
    await s1.release();
    await s2.release();
    expect(locks(root)).toHaveLength(0);
    const x = await RepoLock.acquire(b, opts(h, 'exclusive'));
    await expect(RepoLock.acquire(b, opts(h, 'shared'))).rejects.toSatisfy((e) => isSnapError(e, 'SNAP_LOCKED') && /an exclusive lock of 'gc'/.test((e as Error).message));
    await x.release();
    expect(locks(root)).toHaveLength(0);
  });

  it('waits for a conflicting lock to be released, within --lock-wait', async () => {
    const root = tmpDir();
    const b = new LocalBackend(root);
    const h = host(100);
    const x = await RepoLock.acquire(b, opts(h, 'exclusive'));
    setTimeout(() => void x.release(), 300);
    const o = opts(h, 'shared', { waitMs: 5000 });
    const t0 = Date.now();
    const s = await RepoLock.acquire(b, o);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(o.infos.some((m) => m.startsWith('waiting for an exclusive lock'))).toBe(true);
    await s.release();
  });

  it('breaks a stale lock of a dead process with a message', async () => {
    const root = tmpDir();
    const b = new LocalBackend(root);
    const dead = plant(root, { pid: 4242, command: 'gc' });
    const o = opts(host(100, new Set([100])), 'shared');
    const s = await RepoLock.acquire(b, o);
    expect(locks(root)).not.toContain(dead);
    expect(o.infos.join('\n')).toMatch(/removed a stale lock: an exclusive lock of 'gc' \(pid 4242 on here.*no longer running/);
    await s.release();
  });

  it("breaks another host's lock only when it has not been refreshed for 30 minutes", async () => {
    const root = tmpDir();
    const b = new LocalBackend(root);
    const now = new Date('2026-06-01T12:00:00Z');
    const clock: Clock = fixedClock(now);
    const fresh = plant(root, { host: 'elsewhere', refreshed: new Date(now.getTime() - 10 * 60_000).toISOString() });
    await expect(RepoLock.acquire(b, opts(host(100), 'shared', { clock }))).rejects.toSatisfy((e) => isSnapError(e, 'SNAP_LOCKED') && /on elsewhere/.test((e as Error).message));
    fs.rmSync(path.join(root, 'locks', fresh));
    const old = plant(root, { host: 'elsewhere', refreshed: new Date(now.getTime() - 31 * 60_000).toISOString() });
    const o = opts(host(100), 'shared', { clock });
    const s = await RepoLock.acquire(b, o);
    expect(locks(root)).not.toContain(old);
    expect(o.infos.join('\n')).toMatch(/not been refreshed/);
    await s.release();
  });

  it('refreshes while held, and notices when the lock was taken away', async () => {
    const root = tmpDir();
    const b = new LocalBackend(root);
    const warnings: string[] = [];
    const l = await RepoLock.acquire(b, { ...opts(host(100), 'exclusive'), refreshEveryMs: 50, sink: { warn: (w) => warnings.push(w.message) } });
    const file = path.join(root, l.name);
    const first = decodeLock(fs.readFileSync(file))!;
    // Refreshed every 50 ms: looked at until it was (a loaded machine ran no refresh in 200 ms once).
    let later = first;
    for (let waited = 0; later.refreshed === first.refreshed && waited < 10_000; waited += 50) {
      await new Promise((r) => setTimeout(r, 50));
      later = decodeLock(fs.readFileSync(file))!;
    }
    expect(Date.parse(later.refreshed)).toBeGreaterThan(Date.parse(first.refreshed));
    fs.rmSync(file);
    await expect(l.assertHeld()).rejects.toSatisfy((e) => isSnapError(e, 'SNAP_LOCKED'));
    expect(warnings.join('\n')).toMatch(/was removed by another process/);
    await l.release();
  });

  it('stopped while its lock is written (the answer never comes): removes it briefly, or says it may stay', async () => {
    for (const deleteWorks of [true, false]) {
      const root = tmpDir();
      const b = new LocalBackend(root);
      const stop = new AbortController();
      const interrupted = (): SnapError => new SnapError('SNAP_INTERRUPTED', 'stopped');
      // The server writes the lock, its answer is lost at the stop; with the server gone the delete fails too.
      const put = b.put.bind(b);
      b.put = async (name, bytes) => {
        await put(name, bytes);
        // Stopped already when this goes on (a loaded machine runs it late): the abort event is past.
        if (!stop.signal.aborted) await new Promise((resolve) => stop.signal.addEventListener('abort', resolve, { once: true }));
        throw interrupted();
      };
      const del = b.delete.bind(b);
      b.delete = async (name) => (deleteWorks ? del(name) : Promise.reject(interrupted()));
      const warnings: string[] = [];
      const taking = RepoLock.acquire(b, { ...opts(host(100), 'shared'), signal: stop.signal, sink: { warn: (w) => warnings.push(w.message) } });
      // The lock is written (on a loaded machine that may take more than a moment), its answer not yet come.
      for (let waited = 0; locks(root).length === 0 && waited < 10_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
      expect(locks(root)).toHaveLength(1);
      stop.abort();
      await expect(taking).rejects.toSatisfy((e) => isSnapError(e, 'SNAP_INTERRUPTED'));
      if (deleteWorks) {
        expect([locks(root), warnings]).toEqual([[], []]);
      } else {
        expect(locks(root)).toHaveLength(1);
        expect(warnings).toEqual([expect.stringMatching(/^could not remove the repository lock locks\/[0-9a-f]{64} \(the server could not be reached\): it stays until the next command/)]);
      }
    }
  });
});
