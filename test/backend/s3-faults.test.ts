// Faults between S3Backend and a real radosgw, injected by a TCP proxy (test/helpers/
// fault-proxy.ts): delays, drops, resets, truncations and stalls of chosen requests, and seeded
// random ones. Retries must carry every operation through; when they run out the error is a
// clear SNAP_REMOTE; an upload cut short never leaves a visible blob (nor an unfinished
// multipart upload); a download cut short is detected and never returned short.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { S3Backend } from '../../src/backend/s3.js';
import { FaultProxy, type Fault, type ProxyRequest } from '../helpers/fault-proxy.js';
import { type S3Target, type TargetOptions, pendingUploads, s3Target } from '../helpers/s3-target.js';
import { collect, expectSnapError, listAll, seededBytes, seededStream } from './conformance.js';

const MiB = 1 << 20;
const seed = Number(process.env.SNAP_TEST_SEED) || 4242;

let target: S3Target;
let proxy: FaultProxy | undefined;
const opened: S3Backend[] = [];

beforeAll(async () => {
  target = await s3Target('faults');
}, 900_000);

beforeEach(async (ctx) => {
  if (typeof target.info === 'string') ctx.skip(target.info);
  const url = new URL(target.info.account.endpoint);
  proxy = await FaultProxy.start({ host: url.hostname, port: Number(url.port) });
});

afterEach(async () => {
  for (const b of opened.splice(0)) await b.close();
  await proxy?.close();
});

afterAll(async () => {
  await proxy?.close();
});

/** A backend through the proxy. */
function viaProxy(o: TargetOptions = {}): S3Backend {
  const b = target.backend({ endpoint: proxy!.endpoint, conditionalWrites: true, ...o });
  opened.push(b);
  return b;
}

/** The same prefix, straight to the server (to see what really landed). */
function direct(b: S3Backend): S3Backend {
  const d = target.backend({ prefix: b.loc.prefix.slice(0, -1) });
  opened.push(d);
  return d;
}

/** Faults for the first `n` requests that `match`, none after. */
function firstN(n: number, match: (r: ProxyRequest) => boolean, fault: Fault | ((i: number) => Fault)): (r: ProxyRequest) => Fault | undefined {
  let seen = 0;
  return (r) => {
    if (!match(r) || seen >= n) return undefined;
    return typeof fault === 'function' ? fault(seen++) : (seen++, fault);
  };
}

const isPut = (r: ProxyRequest): boolean => r.method === 'PUT';
const isGet = (r: ProxyRequest): boolean => r.method === 'GET' && !r.path.includes('list-type');

describe('S3Backend through a faulty connection', () => {
  it('every request delayed: all operations succeed', async () => {
    const b = viaProxy();
    proxy!.rule = () => ({ kind: 'delay', ms: 150 });
    const data = seededBytes(seed, 'delay', 300_000);
    await b.put('data/aa/x', data);
    expect((await b.get('data/aa/x')).equals(data)).toBe(true);
    expect([...(await listAll(b, 'data/')).keys()]).toEqual(['data/aa/x']);
    expect(proxy!.faults.length).toBeGreaterThanOrEqual(3);
  });

  it('dropped connections are retried', async () => {
    const b = viaProxy();
    proxy!.rule = firstN(3, () => true, { kind: 'drop' });
    const data = seededBytes(seed, 'drop', 100_000);
    await b.put('snapshots/s1', data);
    proxy!.rule = firstN(2, isGet, { kind: 'drop' });
    expect((await b.get('snapshots/s1')).equals(data)).toBe(true);
    expect(proxy!.faults.length).toBe(5);
  });

  it('when the retries run out: SNAP_REMOTE naming the location, the operation and the blob', async () => {
    const b = viaProxy({ retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 } });
    proxy!.rule = () => ({ kind: 'drop' });
    const e = await expectSnapError(b.put('data/ab/cd', Buffer.from('x')), 'SNAP_REMOTE', 'data/ab/cd');
    expect(e.message).toContain(b.location);
    expect(e.message).toMatch(/PUT data\/ab\/cd failed 3 times/);
    expect(e.message).toMatch(/connection reset|socket hang up|ECONNRESET/);
    expect(e.message).not.toContain((target.info as { account: { secretAccessKey: string } }).account.secretAccessKey);
    await expectSnapError(b.get('data/ab/cd'), 'SNAP_REMOTE', 'GET data/ab/cd');
    await expectSnapError(b.stat('data/ab/cd'), 'SNAP_REMOTE', 'HEAD data/ab/cd');
    await expectSnapError(listAll(b, 'data/'), 'SNAP_REMOTE', 'LIST data/');
    await expectSnapError(b.delete('data/ab/cd'), 'SNAP_REMOTE', 'DELETE data/ab/cd');
    expect(proxy!.events.length).toBe(15);
  });

  it('an upload reset or cut midway is retried, and the blob is whole', async () => {
    const b = viaProxy();
    const data = seededBytes(seed, 'cut-up', 4 * MiB);
    proxy!.rule = firstN(3, isPut, (i): Fault => [{ kind: 'reset', dir: 'up', after: MiB } as const, { kind: 'truncate', dir: 'up', after: 2 * MiB } as const, { kind: 'reset', dir: 'down', after: 0 } as const][i]!);
    await b.put('data/up/blob', data);
    expect(proxy!.faults.length).toBe(3);
    expect((await direct(b).get('data/up/blob')).equals(data)).toBe(true);
  });

  it('an upload that never gets through leaves no blob, and an older one unchanged', async () => {
    const b = viaProxy({ retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 } });
    proxy!.rule = (r) => (isPut(r) ? { kind: 'truncate', dir: 'up', after: 512 * 1024 } : undefined);
    await expectSnapError(b.put('data/up/new', seededBytes(seed, 'new', 2 * MiB)), 'SNAP_REMOTE', 'data/up/new');
    const d = direct(b);
    expect(await d.stat('data/up/new')).toBeUndefined();
    expect(await listAll(d, '')).toEqual(new Map());
    await d.put('data/up/old', Buffer.from('old'));
    await expectSnapError(b.put('data/up/old', seededBytes(seed, 'newer', 2 * MiB)), 'SNAP_REMOTE', 'data/up/old');
    expect((await d.get('data/up/old')).toString()).toBe('old');
  });

  it('a multipart upload whose part fails once is retried; one whose part keeps failing is aborted, leaving nothing', async () => {
    const b = viaProxy({ partSize: 5 * MiB, retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 } });
    const d = direct(b);
    const isPart2 = (r: ProxyRequest): boolean => isPut(r) && r.path.includes('partNumber=2');
    proxy!.rule = firstN(2, isPart2, { kind: 'reset', dir: 'up', after: 1 * MiB });
    await b.putStream('data/mp/ok', seededStream(seed, 'mp', 17 * MiB), 17 * MiB);
    expect(proxy!.faults.length).toBe(2);
    const got = await collect(d.getStream('data/mp/ok'));
    expect(got.equals(seededBytes(seed, 'mp', 17 * MiB))).toBe(true);

    proxy!.rule = (r) => (isPart2(r) ? { kind: 'truncate', dir: 'up', after: 3 * MiB } : undefined);
    await expectSnapError(b.putStream('data/mp/bad', seededStream(seed, 'mp2', 17 * MiB), 17 * MiB), 'SNAP_REMOTE', 'PUT (part 2) data/mp/bad');
    expect(await d.stat('data/mp/bad')).toBeUndefined();
    expect([...(await listAll(d, '')).keys()]).toEqual(['data/mp/ok']);
    expect(await pendingUploads(target, b.loc.prefix)).toEqual([]);
    // The same with a source that breaks after two parts went up.
    proxy!.rule = () => undefined;
    const breaking = async function* (): AsyncIterable<Buffer> {
      yield* seededStream(seed, 'mp3', 12 * MiB);
      throw new Error('the source broke');
    };
    await expect(b.putStream('data/mp/broken', breaking())).rejects.toThrow(/the source broke/);
    expect(await d.stat('data/mp/broken')).toBeUndefined();
    expect(await pendingUploads(target, b.loc.prefix)).toEqual([]);
  });

  it('a download cut short is retried and never returned short; when it keeps failing, SNAP_REMOTE', async () => {
    const b = viaProxy({ retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 } });
    const data = seededBytes(seed, 'cut-down', 2 * MiB);
    await b.put('data/dn/blob', data);
    proxy!.rule = firstN(2, isGet, (i): Fault => (i === 0 ? { kind: 'truncate', dir: 'down', after: 64 * 1024 } : { kind: 'reset', dir: 'down', after: MiB }));
    expect((await b.get('data/dn/blob')).equals(data)).toBe(true);
    proxy!.rule = firstN(1, isGet, { kind: 'truncate', dir: 'down', after: 100_000 });
    expect((await b.getRange('data/dn/blob', 1000, MiB)).equals(data.subarray(1000, 1000 + MiB))).toBe(true);
    expect(proxy!.faults.length).toBe(3);

    proxy!.rule = (r) => (isGet(r) ? { kind: 'truncate', dir: 'down', after: 100_000 } : undefined);
    const e = await expectSnapError(b.get('data/dn/blob'), 'SNAP_REMOTE', 'GET data/dn/blob');
    expect(e.message).toMatch(/cut short/);
    await expectSnapError(b.getRange('data/dn/blob', 0, MiB), 'SNAP_REMOTE', 'GET data/dn/blob');
    // A stream resumes after each cut, so it gets through while every answer brings something...
    expect((await collect(b.getStream('data/dn/blob', { offset: 5, length: 300_000 }))).equals(data.subarray(5, 300_005))).toBe(true);
    // ...and gives up when answers bring nothing (cut inside the headers).
    proxy!.rule = (r) => (isGet(r) ? { kind: 'truncate', dir: 'down', after: 100 } : undefined);
    await expectSnapError(collect(b.getStream('data/dn/blob', { offset: 0, length: 300_000 })), 'SNAP_REMOTE', 'GET data/dn/blob');
  });

  it('a streamed download resumes where its connection dropped', async () => {
    const b = viaProxy();
    const data = seededBytes(seed, 'resume', 3 * MiB);
    await b.put('data/rs/blob', data);
    proxy!.rule = firstN(2, isGet, (i): Fault => (i === 0 ? { kind: 'truncate', dir: 'down', after: MiB } : { kind: 'reset', dir: 'down', after: 700_000 }));
    const got = await collect(b.getStream('data/rs/blob'));
    expect(got.equals(data)).toBe(true);
    const gets = proxy!.events.filter((e) => isGet(e.req));
    expect(gets.length).toBe(3);
    // Only what was missing was asked for again: under 3 MiB + 2 × 1 MiB of answers in all.
  });

  it('a silent connection times out and is retried', async () => {
    const b = viaProxy({ timeoutMs: 800 });
    await b.put('data/st/blob', Buffer.from('patience'));
    proxy!.rule = firstN(1, isGet, { kind: 'stall', dir: 'down', after: 0 });
    const t = Date.now();
    expect((await b.get('data/st/blob')).toString()).toBe('patience');
    expect(Date.now() - t).toBeGreaterThanOrEqual(700);
    proxy!.rule = firstN(1, isPut, { kind: 'stall', dir: 'up', after: 1000 });
    await b.put('data/st/two', seededBytes(seed, 'stall', 200_000));
    expect(proxy!.faults.length).toBe(2);
    expect((await direct(b).get('data/st/two')).equals(seededBytes(seed, 'stall', 200_000))).toBe(true);
  });

  it("putIfAbsent whose answer was lost still reports its own write as the win, and others' as a loss", async () => {
    const b = viaProxy();
    proxy!.rule = firstN(1, (r) => isPut(r) && r.headers.includes('if-none-match'), { kind: 'truncate', dir: 'down', after: 0 });
    expect(await b.putIfAbsent('locks/mine', Buffer.from('my lock record'))).toBe(true);
    expect(proxy!.faults.length).toBe(1);
    expect(await b.putIfAbsent('locks/mine', Buffer.from('another record'))).toBe(false);
    proxy!.rule = firstN(1, (r) => isPut(r) && r.headers.includes('if-none-match'), { kind: 'truncate', dir: 'down', after: 0 });
    expect(await b.putIfAbsent('locks/mine', Buffer.from('a third record'))).toBe(false);
    expect((await direct(b).get('locks/mine')).toString()).toBe('my lock record');
  });

  it('a lost answer to CompleteMultipartUpload: the completed blob is recognised', async () => {
    const b = viaProxy({ partSize: 5 * MiB });
    proxy!.rule = firstN(1, (r) => r.method === 'POST' && r.path.includes('uploadId='), { kind: 'truncate', dir: 'down', after: 0 });
    await b.putStream('data/cm/blob', seededStream(seed, 'complete', 11 * MiB), 11 * MiB);
    expect(proxy!.faults.length).toBe(1);
    expect((await collect(direct(b).getStream('data/cm/blob'))).equals(seededBytes(seed, 'complete', 11 * MiB))).toBe(true);
    expect(await pendingUploads(target, b.loc.prefix)).toEqual([]);
  });

  it(`seeded random faults (seed ${seed}): a series of operations all succeed`, async () => {
    const b = viaProxy({ partSize: 5 * MiB, retry: { attempts: 12, baseDelayMs: 5, maxDelayMs: 100 }, timeoutMs: 5000 });
    proxy!.seeded(seed, 0.3);
    const want = new Map<string, Buffer>();
    for (let i = 0; i < 24; i++) {
      const name = `data/${String(i % 4).padStart(2, '0')}/b${i}`;
      const data = seededBytes(seed, name, 1000 + ((i * 104_729) % 700_000));
      if (i % 6 === 5) await b.putStream(name, seededStream(seed, name, 6 * MiB), 6 * MiB);
      else await b.put(name, data);
      want.set(name, i % 6 === 5 ? seededBytes(seed, name, 6 * MiB) : data);
      const back = i % 2 ? await b.get(name) : await collect(b.getStream(name));
      expect(back.equals(want.get(name)!), name).toBe(true);
      const r = await b.getRange(name, 10, 500);
      expect(r.equals(want.get(name)!.subarray(10, 510))).toBe(true);
      if (i % 5 === 4) {
        const gone = [...want.keys()][0]!;
        await b.delete(gone);
        want.delete(gone);
      }
    }
    const listed = await listAll(b, 'data/');
    expect(new Map([...listed].sort())).toEqual(new Map([...want].map(([k, v]) => [k, v.length] as [string, number]).sort()));
    expect(proxy!.faults.length, 'faults fired').toBeGreaterThanOrEqual(5);
    expect(await pendingUploads(target, b.loc.prefix)).toEqual([]);
  });
});
