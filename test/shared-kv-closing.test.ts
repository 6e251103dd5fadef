// A process that finds the repository index's LevelDB held and nobody answering on its socket:
// an owner that is preparing the index (its owner file written) is waited for only as long as
// --lock-wait says; one without an owner file is closing its index (a backup finishing: it removes
// the file, then closes the LevelDB) or has just opened it, and is waited for a moment whatever
// --lock-wait says, so a reader started with --lock-wait 0 as a backup ends does not fail
// (test/torture/shared-index.test.ts found that window). The LevelDB is held by this process here.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isSnapError } from '../src/core/errors.js';
import { LocalKV, LOCKED } from '../src/index/kv.js';
import { OWNER_FILE, SharedKV } from '../src/index/shared-kv.js';
import { tmpDir } from './helpers/cli.js';

function client(dir: string, waitMs: number): SharedKV {
  return SharedKV.create(dir, { waitMs, sink: {}, owner: { pid: process.pid, host: 'test', command: 'snap test' }, noServe: true });
}

async function hold(dir: string): Promise<LocalKV> {
  const l = await LocalKV.tryOpen(dir);
  if (l === LOCKED) throw new Error('the LevelDB is held already');
  return l;
}

describe('a held index whose owner does not answer', () => {
  it('no owner file (the owner is closing): waited for even with --lock-wait 0; the waiting process then owns the index', async () => {
    const dir = path.join(tmpDir(), 'index');
    const holder = await hold(dir);
    const kv = client(dir, 0);
    const started = kv.start();
    await new Promise((r) => setTimeout(r, 400));
    await holder.close();
    await started;
    await kv.write([[Buffer.from('k'), Buffer.from('v')]]);
    expect((await kv.get(Buffer.from('k')))?.toString()).toBe('v');
    await kv.close();
  });

  it('an owner file (the owner is preparing the index): --lock-wait 0 refuses at once, naming the owner', async () => {
    const dir = path.join(tmpDir(), 'index');
    const holder = await hold(dir);
    fs.writeFileSync(path.join(dir, OWNER_FILE), JSON.stringify({ pid: 4242, host: 'elsewhere', command: 'snap index rebuild', since: new Date().toISOString() }) + '\n');
    const t0 = Date.now();
    const e = await client(dir, 0).start().then(() => undefined, (x: unknown) => x);
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(isSnapError(e, 'SNAP_LOCKED')).toBe(true);
    expect(String((e as Error).message)).toMatch(/snap index rebuild.*pid 4242.*does not answer yet/);
    await holder.close();
  });

  it('no owner file for longer than the grace: refused with SNAP_LOCKED after it, not waited for forever', async () => {
    const dir = path.join(tmpDir(), 'index');
    const holder = await hold(dir);
    const t0 = Date.now();
    const e = await client(dir, 0).start().then(() => undefined, (x: unknown) => x);
    const waited = Date.now() - t0;
    expect(isSnapError(e, 'SNAP_LOCKED')).toBe(true);
    expect(waited).toBeGreaterThanOrEqual(2500);
    expect(waited).toBeLessThan(15_000);
    await holder.close();
  });
});
