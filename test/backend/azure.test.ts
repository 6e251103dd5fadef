// AzureBackend against a real Azurite (test/helpers/azurite.ts): the backend conformance suite
// unchanged, each test under its own prefix in one container; then what is Azure's own: the
// location syntax, each way to sign in (account key, connection string, SAS token), the errors
// (a missing container, wrong credentials, a SAS that may not delete, a server that is gone)
// naming the container and blob and never a secret, and init's container creation; and a
// command's stop (RetryPolicy.stop) with Azurite frozen: every kind of call in flight ends at
// once, a call made after the stop within STOPPED_REQUEST_MS.
import { getEventListeners } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AzureBackend } from '../../src/backend/azure.js';
import { readAzureSettings } from '../../src/backend/azure-config.js';
import { parseAzureLocation } from '../../src/backend/azure-location.js';
import { SnapError, isSnapError } from '../../src/core/errors.js';
import { STOPPED_REQUEST_MS } from '../../src/backend/retry.js';
import { parseRepoLocation } from '../../src/repo/location.js';
import { AZURE_TEST_RETRY, TestAzurite, azuriteMissing } from '../helpers/azurite.js';
import { TcpFaultProxy } from '../helpers/tcp-fault-proxy.js';
import { prng } from '../helpers/rng.js';
import { backendConformance, collect, listAll, seededBytes, seededStream } from './conformance.js';

const MiB = 1 << 20;

const CONTAINER = 'conformance';
const missing = azuriteMissing();
if (missing) console.warn(`SKIPPED: the Azure backend tests need Azurite: ${missing}`);
let azurite: TestAzurite | undefined;

beforeAll(async () => {
  if (missing) return;
  azurite = await TestAzurite.start({ inMemory: true });
  await azurite.backend(CONTAINER).ensureContainer();
}, 120_000);
afterAll(async () => {
  await azurite?.close();
});

// Listing pages of 250 blobs, so the suite's 600 blobs take three pages (Azure's pages hold up to
// 5000); the large streamed blob is 32 MiB, four blocks. Smaller than the suite's defaults to keep
// the run short: Azurite takes about 15 ms a blob.
backendConformance(
  'AzureBackend on Azurite',
  {
    unavailable: () => missing,
    async make() {
      return azurite!.backend(CONTAINER, { listPageSize: 250 });
    },
  },
  { manyBlobs: 600, largeBlobBytes: 32 * 1024 * 1024 },
);

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('it did not fail');
}

describe('azure: locations and settings', () => {
  it('azure:ACCOUNT/CONTAINER[/PREFIX] parses; bad names, URLs and tokens are refused without echoing a secret', () => {
    expect(parseRepoLocation('azure:acct1/backups/host/a', '/cwd')).toEqual({ kind: 'azure', path: 'azure:acct1/backups/host/a', azure: { account: 'acct1', container: 'backups', prefix: 'host/a/' } });
    expect(parseAzureLocation('azure:acct1/backups/')).toEqual({ account: 'acct1', container: 'backups', prefix: '' });
    const usage = (s: string): string => {
      try {
        parseRepoLocation(s, '/cwd');
      } catch (e) {
        if (isSnapError(e, 'SNAP_USAGE')) return e.message;
        throw e;
      }
      throw new Error(`${s} was accepted`);
    };
    expect(usage('azure:acct1')).toMatch(/a container is needed/);
    expect(usage('azure:Acct/backups')).toMatch(/not a storage account name/);
    expect(usage('azure:acct1/Bad_Container')).toMatch(/not a valid container name/);
    expect(usage('azure:acct1/a--b')).toMatch(/not a valid container name/);
    expect(usage('azure:https://acct1.blob.core.windows.net/c')).toMatch(/AZURE_STORAGE_ENDPOINT/);
    const sas = usage('azure:acct1/backups?sv=2024&sig=SECRETSIG');
    expect(sas).toMatch(/AZURE_STORAGE_SAS_TOKEN/);
    expect(sas).not.toContain('SECRETSIG');
    expect(usage('b2:x/y')).toMatch(/azure:ACCOUNT\/CONTAINER/);
  });

  it('credentials from the environment: connection string, then SAS token, then key, else DefaultAzureCredential', () => {
    expect(readAzureSettings({ AZURE_STORAGE_CONNECTION_STRING: 'cs', AZURE_STORAGE_KEY: 'k' }).auth).toEqual({ kind: 'connection-string', connectionString: 'cs' });
    expect(readAzureSettings({ AZURE_STORAGE_SAS_TOKEN: '?sv=1&sig=x', AZURE_STORAGE_KEY: 'k' }).auth).toEqual({ kind: 'sas', token: 'sv=1&sig=x' });
    expect(readAzureSettings({ AZURE_STORAGE_KEY: 'k', AZURE_STORAGE_ENDPOINT: 'http://127.0.0.1:10000/acct/' })).toEqual({ auth: { kind: 'key', key: 'k' }, endpoint: 'http://127.0.0.1:10000/acct' });
    expect(readAzureSettings({}).auth).toEqual({ kind: 'default' });
    expect(() => readAzureSettings({ AZURE_STORAGE_ENDPOINT: 'https://a.blob.core.windows.net/?sig=S' })).toThrow(/must not hold credentials/);
  });
});

describe('azure: signing in, errors and init (Azurite)', () => {
  const skip = (ctx: { skip: () => void }): boolean => {
    if (missing || !azurite) {
      ctx.skip();
      return true;
    }
    return false;
  };

  it('a connection string and a SAS token reach the same blobs as the account key', async (ctx) => {
    if (skip(ctx)) return;
    const a = azurite!;
    const byKey = a.backend(CONTAINER, { prefix: 'signin' });
    await byKey.put('data/aa/one', Buffer.from('one'));
    const byString = new AzureBackend({ location: a.location(CONTAINER, 'signin'), auth: { kind: 'connection-string', connectionString: a.connectionString }, retry: AZURE_TEST_RETRY });
    expect((await byString.get('data/aa/one')).toString()).toBe('one');
    const { StorageSharedKeyCredential, generateAccountSASQueryParameters, AccountSASPermissions, AccountSASResourceTypes, AccountSASServices } = await import('@azure/storage-blob');
    const cred = new StorageSharedKeyCredential(a.account, a.key);
    const sas = (perms: string): string =>
      generateAccountSASQueryParameters(
        { expiresOn: new Date(Date.now() + 3600_000), permissions: AccountSASPermissions.parse(perms), resourceTypes: AccountSASResourceTypes.parse('sco').toString(), services: AccountSASServices.parse('b').toString() },
        cred,
      ).toString();
    const bySas = new AzureBackend({ location: a.location(CONTAINER, 'signin'), auth: { kind: 'sas', token: sas('rwdlac') }, endpoint: a.endpoint, retry: AZURE_TEST_RETRY });
    expect((await bySas.get('data/aa/one')).toString()).toBe('one');
    // A connection string with a SAS and a BlobEndpoint that AZURE_STORAGE_ENDPOINT overrides.
    const sasString = `BlobEndpoint=http://127.0.0.1:9/${a.account};SharedAccessSignature=${sas('rl')}`;
    const byBoth = new AzureBackend({ location: a.location(CONTAINER, 'signin'), auth: { kind: 'connection-string', connectionString: sasString }, endpoint: a.endpoint, retry: AZURE_TEST_RETRY });
    expect((await byBoth.get('data/aa/one')).toString()).toBe('one');
    await bySas.put('data/aa/two', Buffer.from('two'));
    expect((await byKey.get('data/aa/two')).toString()).toBe('two');
    // A token that may read, write and list but not delete.
    const token = sas('rwlac');
    const appendOnly = new AzureBackend({ location: a.location(CONTAINER, 'signin'), auth: { kind: 'sas', token }, endpoint: a.endpoint, retry: AZURE_TEST_RETRY });
    expect(await appendOnly.putIfAbsent('locks/l1', Buffer.from('lock'))).toBe(true);
    const denied = await failure(appendOnly.delete('data/aa/two'));
    expect(isSnapError(denied, 'SNAP_DELETE_DENIED'), denied.message).toBe(true);
    expect(denied.message).toContain(`azure:${a.account}/${CONTAINER}/signin: DELETE data/aa/two`);
    expect(denied.message).not.toContain(new URLSearchParams(token).get('sig')!);
    expect(await byKey.exists('data/aa/two')).toBe(true);
  });

  it('wrong credentials are SNAP_PERMISSION, a missing container SNAP_NO_REPO, a missing blob SNAP_MISSING_OBJECT; no secret in any message', async (ctx) => {
    if (skip(ctx)) return;
    const a = azurite!;
    const wrongKey = Buffer.from('not the key of this account, but base64').toString('base64');
    const bad = a.backend(CONTAINER, { auth: { kind: 'key', key: wrongKey } });
    const e1 = await failure(bad.get('config'));
    expect(isSnapError(e1, 'SNAP_PERMISSION'), e1.message).toBe(true);
    expect(e1.message).toMatch(/permission denied: the service did not accept the credentials/);
    expect(e1.message).toContain('GET config');
    expect(e1.message).not.toContain(wrongKey);
    const badSas = a.backend(CONTAINER, { auth: { kind: 'sas', token: 'sv=2021-08-06&ss=b&srt=sco&sp=rl&se=2099-01-01T00:00:00Z&sig=BADSIGNATURE0' } });
    const e2 = await failure(badSas.get('config'));
    expect(isSnapError(e2, 'SNAP_PERMISSION'), e2.message).toBe(true);
    expect(e2.message).not.toContain('BADSIGNATURE0');
    const none = a.backend('no-such-container');
    const e3 = await failure((async () => {
      for await (const b of none.list('')) void b;
    })());
    expect(isSnapError(e3, 'SNAP_NO_REPO'), e3.message).toBe(true);
    expect(e3.message).toContain('the container no-such-container does not exist');
    expect(await none.stat('config')).toBeUndefined();
    const e4 = await failure(a.backend(CONTAINER).get('data/00/absent'));
    expect(isSnapError(e4, 'SNAP_MISSING_OBJECT'), e4.message).toBe(true);
    expect(e4.message).toMatch(/data\/00\/absent is missing from the repository at azure:/);
    const cs = await failure(new AzureBackend({ location: a.location(CONTAINER), auth: { kind: 'connection-string', connectionString: a.connectionString.replace(a.account, 'otheraccount') } }).get('config'));
    expect(isSnapError(cs, 'SNAP_USAGE'), cs.message).toBe(true);
    expect(cs.message).not.toContain(a.key);
  });

  it('DefaultAzureCredential (no key, SAS or connection string) is refused over http before any sign-in is tried', async (ctx) => {
    if (skip(ctx)) return;
    const b = new AzureBackend({ location: azurite!.location(CONTAINER), auth: { kind: 'default' }, endpoint: azurite!.endpoint, retry: AZURE_TEST_RETRY });
    const e = await failure(b.get('config'));
    expect(isSnapError(e, 'SNAP_USAGE'), e.message).toBe(true);
    expect(e.message).toMatch(/DefaultAzureCredential .* needs an https endpoint/);
  });

  it('a server that is not there: retried, then SNAP_REMOTE naming the location, operation and blob', async (ctx) => {
    if (skip(ctx)) return;
    const gone = new AzureBackend({ location: azurite!.location(CONTAINER, 'x'), auth: { kind: 'key', key: azurite!.key }, endpoint: 'http://127.0.0.1:9/acct', retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 } });
    const e = await failure(gone.put('data/aa/b', Buffer.from('x')));
    expect(isSnapError(e, 'SNAP_REMOTE'), e.message).toBe(true);
    expect(e.message).toMatch(/^azure:\w+\/conformance\/x: PUT data\/aa\/b failed 3 times in [\d.]+ s, giving up; last: connection refused \(ECONNREFUSED\)$/);
  });

  it('ensureContainer makes a container once', async (ctx) => {
    if (skip(ctx)) return;
    const b = azurite!.backend('made-by-init');
    expect(await b.ensureContainer()).toBe('created');
    expect(await b.ensureContainer()).toBe('existed');
    await b.put('config', Buffer.from('c'));
    expect(await b.exists('config')).toBe(true);
  });
});

describe('azure: connections reset and dropped at seeded points (TCP proxies before Azurite)', () => {
  it('streamed and whole puts and gets are retried through them; reads are never short and every blob is whole', async (ctx) => {
    if (missing || !azurite) return ctx.skip();
    const random = prng(Number(process.env.SNAP_TEST_SEED) || 2121);
    const kind = (): 'reset' | 'drop' => (random() < 0.5 ? 'reset' : 'drop');
    // Every connection breaks: through `up`, after 64 KiB to 6 MiB sent (headers, a block's
    // body); through `down`, after 64 KiB to 4 MiB received. Blocks of 2 MiB can get through.
    const up = await TcpFaultProxy.start(azurite.port, () => ({ kind: kind(), direction: 'up', afterBytes: 65536 + Math.floor(random() * 6 * MiB) }));
    const down = await TcpFaultProxy.start(azurite.port, () => ({ kind: kind(), direction: 'down', afterBytes: 65536 + Math.floor(random() * 4 * MiB) }));
    try {
      const through = (p: TcpFaultProxy): AzureBackend =>
        azurite!.backend(CONTAINER, { prefix: 'faults', endpoint: `http://127.0.0.1:${p.port}/${azurite!.account}`, blockSize: 2 * MiB, retry: { attempts: 30, baseDelayMs: 2, maxDelayMs: 20 } });
      const w = through(up);
      const r = through(down);
      const direct = azurite.backend(CONTAINER, { prefix: 'faults' });
      const size = 20 * MiB; // ten blocks
      await w.putStream('data/ff/big', seededStream(2121, 'big', size), size);
      await w.put('data/ff/small', seededBytes(2121, 'small', 300_000));
      expect(await w.putIfAbsent('locks/one', Buffer.from('lock'))).toBe(true);
      expect(await w.putIfAbsent('locks/one', Buffer.from('other'))).toBe(false);
      expect((await direct.get('locks/one')).toString()).toBe('lock');
      expect((await direct.get('data/ff/big')).equals(seededBytes(2121, 'big', size))).toBe(true);
      expect((await r.get('data/ff/small')).equals(seededBytes(2121, 'small', 300_000))).toBe(true);
      expect((await collect(r.getStream('data/ff/big'))).equals(seededBytes(2121, 'big', size))).toBe(true);
      const tail = await collect(r.getStream('data/ff/big', { offset: 5 * MiB + 7, length: 9 * MiB }));
      expect(tail.equals(seededBytes(2121, 'big', 9 * MiB, 5 * MiB + 7))).toBe(true);
      expect((await r.getRange('data/ff/big', 17 * MiB, MiB)).equals(seededBytes(2121, 'big', MiB, 17 * MiB))).toBe(true);
      expect([...(await listAll(r, 'data/')).entries()].sort()).toEqual([
        ['data/ff/big', size],
        ['data/ff/small', 300_000],
      ]);
      // 20 MiB up through connections that carry at most 6 MiB, 30 MiB down through ones that carry at most 4.
      expect(up.fired.length, `${up.connections} connections up`).toBeGreaterThanOrEqual(3);
      expect(down.fired.length, `${down.connections} connections down`).toBeGreaterThanOrEqual(7);
    } finally {
      await up.close();
      await down.close();
    }
  }, 120_000);
});

describe('azure: a stopped command while Azurite is frozen (SIGSTOP: connections open, nothing answers)', () => {
  let own: TestAzurite | undefined;
  afterAll(async () => {
    await own?.close();
  });

  /** When `p` settles (ms after `t0`) and with what, or 'pending' after `ms`. */
  const settled = (p: Promise<unknown>, t0: number, ms: number): Promise<{ at: number; error?: unknown } | 'pending'> =>
    Promise.race([p.then(() => ({ at: Date.now() - t0 }), (error: unknown) => ({ at: Date.now() - t0, error })), new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms))]);

  it('every call in flight (put, putIfAbsent, staged blocks, get, getRange, getStream before and in its body, stat, list, delete) ends at once with the stop reason; a call after the stop within a few seconds', async (ctx) => {
    if (missing) return ctx.skip();
    own = await TestAzurite.start({ inMemory: true });
    const stop = new AbortController();
    const b = own.backend('stop', { prefix: 'p', blockSize: MiB, retry: { ...AZURE_TEST_RETRY, stop: stop.signal } });
    await b.ensureContainer();
    const big = seededBytes(7, 'big', 32 * MiB); // more than the sockets hold: its body is still coming when the server freezes
    await b.put('data/aa/big', big);
    await b.put('locks/one', Buffer.from('lock'));
    // A streamed read with its first bytes in, the rest of its body still to come.
    const reading = b.getStream('data/aa/big')[Symbol.asyncIterator]();
    expect((await reading.next()).done).toBe(false);
    own.freeze();
    try {
      const calls: [string, Promise<unknown>][] = [
        ['put', b.put('data/bb/one', Buffer.from('one'))],
        ['putIfAbsent', b.putIfAbsent('locks/two', Buffer.from('two'))],
        ['putStream (staged blocks)', b.putStream('data/cc/three', seededStream(7, 'three', 3 * MiB), 3 * MiB)],
        ['get', b.get('data/aa/big')],
        ['getRange', b.getRange('data/aa/big', 5, 1000)],
        ['getStream', collect(b.getStream('data/aa/big', { offset: 10, length: 2 * MiB }))],
        ['getStream (in its body)', (async () => { for (let r = await reading.next(); !r.done; r = await reading.next()); })()],
        ['stat', b.stat('locks/one')],
        ['list', listAll(b, 'locks/')],
        ['delete', b.delete('locks/one')],
      ];
      await new Promise((r) => setTimeout(r, 500));
      // One listener on the stop for the backend, however many requests are in flight.
      expect(getEventListeners(stop.signal, 'abort')).toHaveLength(1);
      const reason = new SnapError('SNAP_INTERRUPTED', 'stopped by the test');
      const t0 = Date.now();
      stop.abort(reason);
      const results = await Promise.all(calls.map(([, p]) => settled(p, t0, 5000)));
      for (const [i, r] of results.entries()) {
        const what = calls[i]![0];
        expect([what, r === 'pending' ? 'pending' : r.error]).toEqual([what, reason]);
        expect(r === 'pending' ? Infinity : r.at, what).toBeLessThan(1000);
      }
      // A cleanup after the stop (the lock's release) gets one try of STOPPED_REQUEST_MS.
      const t1 = Date.now();
      const cleanup = await settled(b.delete('locks/one'), t1, 4 * STOPPED_REQUEST_MS);
      expect(cleanup === 'pending' ? 'pending' : cleanup.error).toBe(reason);
      expect(cleanup === 'pending' ? Infinity : cleanup.at).toBeGreaterThanOrEqual(STOPPED_REQUEST_MS - 100);
      expect(cleanup === 'pending' ? Infinity : cleanup.at).toBeLessThan(2 * STOPPED_REQUEST_MS);
    } finally {
      own.thaw();
    }
    // The server resumed: a backend without a stop finds the blobs whole.
    const after = own.backend('stop', { prefix: 'p' });
    expect((await after.get('data/aa/big')).equals(big)).toBe(true);
    await b.close();
  }, 60_000);

  it('without a stop: a try with no answer, or a read whose body stops coming, is abandoned after timeoutMs and retried; then SNAP_REMOTE', async (ctx) => {
    if (missing) return ctx.skip();
    own ??= await TestAzurite.start({ inMemory: true });
    const b = own.backend('timeout', { prefix: 'p', timeoutMs: 1000, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 } });
    await b.ensureContainer();
    await b.put('data/aa/big', seededBytes(8, 'big', 32 * MiB));
    const reading = b.getStream('data/aa/big')[Symbol.asyncIterator]();
    expect((await reading.next()).done).toBe(false);
    own.freeze();
    try {
      const t0 = Date.now();
      const [stat, body] = await Promise.all(
        [b.stat('data/aa/big'), (async () => { for (let r = await reading.next(); !r.done; r = await reading.next()); })()].map((p) => settled(p, t0, 15_000)),
      );
      expect(stat === 'pending' ? 'pending' : (stat.error as Error).message).toMatch(/: HEAD data\/aa\/big failed 2 times in [\d.]+ s, giving up; last: no answer within 1 s$/);
      expect(body === 'pending' ? 'pending' : (body.error as Error).message).toMatch(/: GET data\/aa\/big failed 2 times in [\d.]+ s, giving up; last: no answer within 1 s$/);
      for (const r of [stat, body]) expect(r === 'pending' ? Infinity : r.at).toBeLessThan(8000);
    } finally {
      own.thaw();
    }
  }, 60_000);
});
