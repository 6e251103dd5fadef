// A listing that must end. Object stores page a listing with continuation tokens; a server (or a
// proxy between) that answers a token with a page it gave before, lists keys out of order, or
// sends empty pages without end would keep `list` going forever. The backend's ListingGuard
// (src/backend/checks.ts) stops that with SNAP_REMOTE. Against a real radosgw, through an HTTP
// proxy of this test that rewrites the second page's continuation token into the first one's (the
// answers are not signed, so the client cannot tell): the server then serves page 2 again and
// again. The proxy gives up rewriting after 40 pages, so code without the guard ends too (with
// keys listed twice) instead of hanging the suite.
import * as http from 'node:http';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FolderListingGuard, ListingGuard } from '../../src/backend/checks.js';
import type { S3Backend } from '../../src/backend/s3.js';
import { type S3Target, s3Target } from '../helpers/s3-target.js';
import { expectSnapError } from './conformance.js';

describe('FolderListingGuard (SFTP folder reads; a real server repeating itself: sftp.test.ts)', () => {
  it('each name once, and empty batches only up to a bound', () => {
    const g = new FolderListingGuard('listing data in sftp:x', 3);
    g.batch([Buffer.from('a'), Buffer.from('b')]);
    g.batch([]);
    g.batch([Buffer.from([0xff])]);
    expect(() => g.batch([Buffer.from('b')])).toThrow(/listed 'b' twice in one folder/);
    const e = new FolderListingGuard('listing data in sftp:x', 3);
    for (let i = 0; i < 3; i++) e.batch([]);
    expect(() => e.batch([])).toThrow(/4 empty batches in a row/);
  });
});

describe('ListingGuard', () => {
  const thrown = (f: () => void): string => {
    try {
      f();
    } catch (e) {
      expect((e as { code?: string }).code).toBe('SNAP_REMOTE');
      return (e as Error).message;
    }
    throw new Error('no error');
  };

  it('accepts ascending keys over pages with new tokens, and the end of the listing', () => {
    const g = new ListingGuard('store: LIST data/');
    g.page(['data/00/a', 'data/00/b'], 't1');
    g.page(['data/01/a'], 't2');
    g.page([], 't3'); // an empty page that asks for more is allowed, a few times
    g.page(['data/ff/z'], undefined);
  });

  it('refuses a token given before, keys out of order or repeated, and endless empty pages', () => {
    const repeat = new ListingGuard('store: LIST data/');
    repeat.page(['a'], 't1');
    expect(thrown(() => repeat.page(['b'], 't1'))).toMatch(/^store: LIST data\/: the server gave a continuation token it gave before/);
    const order = new ListingGuard('store: LIST data/');
    order.page(['b'], 't1');
    expect(thrown(() => order.page(['a'], 't2'))).toMatch(/listed 'a' after 'b'/);
    const twice = new ListingGuard('store: LIST data/');
    twice.page(['a', 'b'], 't1');
    expect(thrown(() => twice.page(['b', 'c'], 't2'))).toMatch(/listed 'b' after 'b'/);
    // UTF-8 byte order, as S3 sorts: U+FF5E sorts after U+10000 in UTF-16 code units, before it in UTF-8.
    const utf8 = new ListingGuard('s');
    utf8.page(['\uff5e', '\u{10000}'], undefined);
    const empty = new ListingGuard('s', 5);
    for (let i = 0; i < 5; i++) empty.page([], `t${i}`);
    expect(thrown(() => empty.page([], 't5'))).toMatch(/6 empty pages in a row/);
  });
});

let target: S3Target;
let proxy: http.Server | undefined;
const opened: S3Backend[] = [];

beforeAll(async () => {
  target = await s3Target('listing');
}, 900_000);

beforeEach((ctx) => {
  if (typeof target.info === 'string') ctx.skip(target.info);
});

afterEach(async () => {
  for (const b of opened.splice(0)) await b.close();
  await new Promise((r) => (proxy ? proxy.close(r) : r(undefined)));
  proxy = undefined;
});


/** An HTTP proxy to the gateway that hands `rewrite` each LIST answer (by its number) to change. */
async function listingProxy(upstream: URL, rewrite: (xml: string, n: number) => string): Promise<{ endpoint: string; lists: () => number }> {
  let lists = 0;
  const server = http.createServer((req, res) => {
    const isList = req.method === 'GET' && (req.url ?? '').includes('list-type=2');
    const up = http.request({ host: upstream.hostname, port: Number(upstream.port), method: req.method, path: req.url, headers: req.headers }, (ur) => {
      const chunks: Buffer[] = [];
      ur.on('data', (c: Buffer) => chunks.push(c));
      ur.on('end', () => {
        let body = Buffer.concat(chunks);
        if (isList && ur.statusCode === 200) body = Buffer.from(rewrite(body.toString('utf8'), lists++), 'utf8');
        const headers = { ...ur.headers, 'content-length': String(body.length) };
        delete headers['transfer-encoding'];
        res.writeHead(ur.statusCode ?? 502, headers);
        res.end(body);
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  proxy = server;
  return { endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`, lists: () => lists };
}

describe('S3Backend.list through a proxy that loops the listing', () => {
  it('a continuation token answered with a page seen before is SNAP_REMOTE, at the second page', async () => {
    const info = target.info as Exclude<S3Target['info'], string>;
    const prefix = `loop-${Date.now()}`;
    const direct = target.backend({ prefix });
    opened.push(direct);
    // 1001 blobs: two pages of at most 1000 keys.
    const names = Array.from({ length: 1001 }, (_, i) => `data/00/${String(i).padStart(5, '0')}`);
    for (let i = 0; i < names.length; i += 50) await Promise.all(names.slice(i, i + 50).map((n) => direct.put(n, Buffer.from(n))));
    let firstToken: string | undefined;
    const p = await listingProxy(new URL(info.account.endpoint), (xml, n) => {
      const token = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml)?.[1];
      if (n === 0) firstToken = token;
      // From the second page on, claim there is more, and that it is where the first page pointed.
      if (n === 0 || n > 40 || firstToken === undefined) return xml;
      const more = xml.replace('<IsTruncated>false</IsTruncated>', '<IsTruncated>true</IsTruncated>');
      return more.includes('<NextContinuationToken>') ? more.replace(/<NextContinuationToken>[^<]*</, `<NextContinuationToken>${firstToken}<`) : more.replace('</ListBucketResult>', `<NextContinuationToken>${firstToken}</NextContinuationToken></ListBucketResult>`);
    });
    const looped = target.backend({ prefix, endpoint: p.endpoint });
    opened.push(looped);
    const seen: string[] = [];
    await expectSnapError(
      (async () => {
        for await (const b of looped.list('data/')) seen.push(b.name);
      })(),
      'SNAP_REMOTE',
      'the server gave a continuation token it gave before',
    );
    expect(p.lists()).toBe(2);
    expect(new Set(seen).size).toBe(seen.length);
    // Straight to the gateway, the same listing is whole.
    const all: string[] = [];
    for await (const b of direct.list('data/')) all.push(b.name);
    expect(all).toEqual(names);
  }, 180_000);
});
