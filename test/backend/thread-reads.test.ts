// The reads a worker thread makes itself of a local repository's blobs (backend/thread-reads.ts;
// a restore's writer threads use them): the same bytes and the same errors as the backend's own
// getRange, plain and encrypted, on real files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { EncryptedBackend, FILE_NONCE_BYTES, SEGMENT_BYTES } from '../../src/backend/encrypted.js';
import { LocalBackend } from '../../src/backend/local.js';
import { AppendOnlyBackend } from '../../src/backend/append-only.js';
import { ThreadBlobReader } from '../../src/backend/thread-reads.js';
import type { Backend } from '../../src/backend/backend.js';
import { tmpDir } from '../helpers/cli.js';

const keys = { dataKey: randomBytes(32) };
const NAME = `data/ab/${'ab'.repeat(32)}`;

function setup(encrypted: boolean): { root: string; backend: Backend; reader: ThreadBlobReader } {
  const root = tmpDir('snap-thread-reads-');
  const local = new LocalBackend(root);
  const backend = encrypted ? new EncryptedBackend(local, keys) : local;
  const spec = backend.threadReads!()!;
  expect(spec.root).toBe(root);
  expect(spec.keys !== undefined).toBe(encrypted);
  return { root, backend, reader: new ThreadBlobReader(spec) };
}

/** A blob of several segments and a bit, with a recognisable pattern. */
function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 16)) & 0xff;
  return b;
}

describe('ThreadBlobReader: a thread reads blobs of a local repository itself', () => {
  for (const encrypted of [false, true]) {
    const kind = encrypted ? 'encrypted' : 'plain';

    it(`${kind}: ranges across and within segments, repeated, at the ends and empty, equal getRange's`, async () => {
      const { backend, reader } = setup(encrypted);
      const plain = pattern(5 * SEGMENT_BYTES + 777);
      await backend.put(NAME, plain);
      await backend.put('data/cd/other', plain.subarray(0, 1000));
      const ranges: [number, number][] = [
        [0, 1], [0, plain.length], [SEGMENT_BYTES - 3, 10], [100, 3 * SEGMENT_BYTES], [plain.length - 5, 5], [7, 0],
        [SEGMENT_BYTES, SEGMENT_BYTES], [2 * SEGMENT_BYTES + 5, 100], [2 * SEGMENT_BYTES + 200, 100], [2 * SEGMENT_BYTES + 5, 100],
      ];
      let seed = 7;
      for (let i = 0; i < 200; i++) {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        const o = seed % plain.length;
        ranges.push([o, Math.min(plain.length - o, seed % 70_000)]);
      }
      for (const [o, n] of ranges) {
        const want = await backend.getRange(NAME, o, n);
        expect(want.equals(plain.subarray(o, o + n))).toBe(true);
        expect(reader.read(NAME, o, n).equals(want), `${o}+${n}`).toBe(true);
        // Another blob between reads: what is kept of the first is never taken for the second's.
        expect(reader.read('data/cd/other', 10, 20).equals(plain.subarray(10, 30))).toBe(true);
      }
      reader.close();
      await backend.close();
    });

    it(`${kind}: missing, short, a symlink or a FIFO: the backend's errors, and nothing hangs`, async () => {
      const { root, backend, reader } = setup(encrypted);
      const plain = pattern(2 * SEGMENT_BYTES + 10);
      await backend.put(NAME, plain);
      expect(() => reader.read('data/ef/missing', 0, 10)).toThrow(expect.objectContaining({ code: 'SNAP_MISSING_OBJECT' }));
      expect(() => reader.read(NAME, plain.length - 5, 6)).toThrow(expect.objectContaining({ code: 'SNAP_CORRUPT', message: expect.stringMatching(/shorter than expected/) }));
      fs.mkdirSync(path.join(root, 'data', 'ef'), { recursive: true });
      fs.symlinkSync(path.join(root, NAME), path.join(root, 'data', 'ef', 'link'));
      expect(() => reader.read('data/ef/link', 0, 10)).toThrow(expect.objectContaining({ code: 'SNAP_CORRUPT', message: expect.stringMatching(/symbolic link/) }));
      execFileSync('mkfifo', [path.join(root, 'data', 'ef', 'fifo')]);
      expect(() => reader.read('data/ef/fifo', 0, 10)).toThrow(expect.objectContaining({ code: 'SNAP_CORRUPT', message: expect.stringMatching(/FIFO/) }));
      // Cut after it was opened: the read that reaches the cut fails, those before it do not.
      expect(reader.read(NAME, 0, 10).equals(plain.subarray(0, 10))).toBe(true);
      fs.truncateSync(path.join(root, NAME), encrypted ? FILE_NONCE_BYTES + SEGMENT_BYTES + 16 + 100 : SEGMENT_BYTES + 100);
      expect(() => reader.read(NAME, SEGMENT_BYTES + 50, 100)).toThrow(expect.objectContaining({ code: 'SNAP_CORRUPT' }));
      await expect(backend.getRange(NAME, SEGMENT_BYTES + 50, 100)).rejects.toThrow(expect.objectContaining({ code: 'SNAP_CORRUPT' }));
      reader.close();
      await backend.close();
    });
  }

  it('encrypted: a flipped byte fails its segment only, naming the pack and the segment', async () => {
    const { root, backend, reader } = setup(true);
    const plain = pattern(3 * SEGMENT_BYTES + 10);
    await backend.put(NAME, plain);
    const f = path.join(root, NAME);
    const b = fs.readFileSync(f);
    b[FILE_NONCE_BYTES + (SEGMENT_BYTES + 16) + 99]! ^= 0x01; // in segment 1
    fs.chmodSync(f, 0o600);
    fs.writeFileSync(f, b);
    const r2 = new ThreadBlobReader(backend.threadReads!()!);
    expect(() => r2.read(NAME, SEGMENT_BYTES + 10, 50)).toThrow(expect.objectContaining({ code: 'SNAP_CORRUPT', message: expect.stringMatching(/pack abababababab failed authentication \(segment 1 of 4/) }));
    expect(() => r2.read(NAME, 10, SEGMENT_BYTES + 10)).toThrow(expect.objectContaining({ code: 'SNAP_CORRUPT' }));
    expect(r2.read(NAME, 10, 50).equals(plain.subarray(10, 60))).toBe(true);
    expect(r2.read(NAME, 2 * SEGMENT_BYTES, SEGMENT_BYTES + 10).equals(plain.subarray(2 * SEGMENT_BYTES))).toBe(true);
    // The config and key files are stored in the clear, and read so.
    await backend.put('config', Buffer.from('{"x":1}'));
    expect(r2.read('config', 0, 7).toString()).toBe('{"x":1}');
    r2.close();
    reader.close();
    await backend.close();
  });

  it('wrappers that read through to a local folder pass it on; storage that is not local has none', () => {
    const local = new LocalBackend(tmpDir('snap-thread-reads-'));
    expect(new AppendOnlyBackend(local).threadReads!()).toEqual({ root: local.root });
    // A sealed folder wrapped again (never made by snap) is not read on threads: the key would be lost.
    expect(new EncryptedBackend(new EncryptedBackend(local, keys), keys).threadReads!()).toBeUndefined();
    const remoteLike = { ...Object.fromEntries(Object.entries(local)), location: 's3:x' } as unknown as Backend;
    expect(new EncryptedBackend(remoteLike, keys).threadReads!()).toBeUndefined();
  });
});
