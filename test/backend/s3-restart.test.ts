// radosgw killed (SIGKILL) and started again in the middle of a series of puts, on a gateway of
// this file's own (a second radosgw on the run's cluster, so other files' gateway runs on):
// operations caught while it is down are retried until it is back, and every blob is whole.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Backend } from '../../src/backend/s3.js';
import { CephCluster, type Gateway, type SharedRadosgw } from '../helpers/radosgw.js';
import { s3Target } from '../helpers/s3-target.js';
import { collect, listAll, seededBytes, seededStream } from './conformance.js';

const MiB = 1 << 20;
const seed = Number(process.env.SNAP_TEST_SEED) || 777;
let info: SharedRadosgw | string;
let gw: Gateway | undefined;

beforeAll(async () => {
  const t = await s3Target('restart');
  info = t.info;
  if (typeof info !== 'string') gw = await CephCluster.attach(info.clusterDir).startGateway(`restart-${randomBytes(3).toString('hex')}`);
}, 900_000);

afterAll(async () => {
  await gw?.stop(true);
});

function backend(): S3Backend {
  const i = info as SharedRadosgw;
  return new S3Backend({
    location: `s3:${gw!.endpoint}/restart/r-${randomBytes(4).toString('hex')}`,
    credentials: { accessKeyId: i.account.accessKeyId, secretAccessKey: i.account.secretAccessKey },
    partSize: 5 * MiB,
    // Enough patience for a gateway restart (a few seconds here), in short steps.
    retry: { attempts: 40, baseDelayMs: 50, maxDelayMs: 1000 },
    timeoutMs: 10_000,
  });
}

describe('radosgw restarted during a series of puts', () => {
  it('puts and a multipart upload caught by the outage finish once the gateway is back; every blob is whole', async (ctx) => {
    if (typeof info === 'string') ctx.skip(info);
    const b = backend();
    try {
      const want = new Map<string, Buffer>();
      let restarted: Promise<void> | undefined;
      let downAt = 0;
      let upAt = 0;
      for (let i = 0; i < 24; i++) {
        const name = `data/${String(i % 3).padStart(2, '0')}/p${i}`;
        if (i === 6) {
          await gw!.stop(); // SIGKILL: as if it crashed
          downAt = Date.now();
          restarted = (async () => {
            await new Promise((r) => setTimeout(r, 1500));
            await gw!.start();
            upAt = Date.now();
          })();
        }
        if (i === 7 || i === 15) {
          await b.putStream(name, seededStream(seed, name, 12 * MiB), 12 * MiB);
          want.set(name, seededBytes(seed, name, 12 * MiB));
        } else {
          const data = seededBytes(seed, name, 100_000 + i * 7000);
          await b.put(name, data);
          want.set(name, data);
        }
        if (i === 6) expect(Date.now() - downAt, 'the put caught by the outage waited for the gateway').toBeGreaterThanOrEqual(1500);
        if (i === 12) {
          // Down again, this time in the middle of a streamed upload.
          await restarted;
          const big = 'data/00/big';
          // Paced (a MiB per 100 ms), so the gateway stops in the middle of it however fast the machine.
          const upload = b.putStream(big, seededStream(seed, big, 16 * MiB, MiB, () => new Promise((r) => setTimeout(r, 100))), 16 * MiB);
          await new Promise((r) => setTimeout(r, 150));
          await gw!.stop();
          const stoppedAt = Date.now();
          setTimeout(() => void gw!.start(), 1000);
          await upload;
          expect(Date.now() - stoppedAt, 'the upload waited for the gateway').toBeGreaterThanOrEqual(1000);
          want.set(big, seededBytes(seed, big, 16 * MiB));
        }
      }
      await restarted;
      expect(upAt - downAt, 'the gateway was down for a while').toBeGreaterThanOrEqual(1500);
      const listed = await listAll(b, 'data/');
      expect(new Map([...listed].sort())).toEqual(new Map([...want].map(([k, v]) => [k, v.length] as [string, number]).sort()));
      for (const [name, data] of want) expect((await collect(b.getStream(name))).equals(data), name).toBe(true);
    } finally {
      await b.close();
    }
  }, 300_000);
});
