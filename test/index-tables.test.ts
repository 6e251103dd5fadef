// The LevelDB index's table files are checked against their block checksums before LevelDB reads
// them (src/index/table-check.ts), and the snapshot list in the index is held against itself:
// - the table decoder reads LevelDB's own files (Snappy-compressed blocks included), and finds
//   every flipped byte outside the footer's padding;
// - a table whose key length was damaged (LevelDB aborts the process on it: an assertion in its
//   C++) is found at open and the index rebuilt: `list` shows both snapshots, nothing aborts;
// - a snapshot whose time-ordered entry is gone while its id entry stays (a flipped byte in a key)
//   is listed again, from storage; one whose entry's key names another time is listed once;
// - a table checked once is not read again until it changes, and tables LevelDB wrote while a
//   process had it open are recorded when it closes; changed later, they are checked again.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Level } from 'level';
import { afterAll, describe, expect, it } from 'vitest';
import { CHECKED_FILE, checkTables, crc32c, recordWrittenTables, tableBlocks, tableDamage, tableEntries, tableStamps } from '../src/index/table-check.js';
import { K_SNAP } from '../src/index/keys.js';
import { LOCKED, LocalKV } from '../src/index/kv.js';
import { snap, trackedDirs } from './helpers/cli.js';

const dirs = trackedDirs('index-tables');
afterAll(() => dirs.cleanup());

const ENC = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;

function tables(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.endsWith('.ldb')).sort().map((n) => path.join(dir, n));
}

/** A LevelDB with `n` entries in table files: values alternate between text Snappy shrinks and random bytes. */
async function leveldb(n: number): Promise<{ dir: string; want: Map<string, Buffer> }> {
  const dir = path.join(dirs.make('snap-ldb-'), 'db');
  const want = new Map<string, Buffer>();
  const db = new Level<Buffer, Buffer>(dir, ENC);
  await db.open();
  for (let i = 0; i < n; i += 500) {
    const batch = db.batch();
    for (let j = i; j < Math.min(n, i + 500); j++) {
      const k = Buffer.from(`key-${String(j).padStart(7, '0')}`);
      const v = j % 2 ? randomBytes(40) : Buffer.from(`${'the same words again and again, '.repeat(8)}${j}`);
      want.set(k.toString('latin1'), v);
      batch.put(k, v);
    }
    await batch.write();
  }
  await db.close();
  // Reopening moves the log into a table.
  await db.open();
  await db.close();
  return { dir, want };
}

describe('LevelDB table files', () => {
  it('CRC-32C is the Castagnoli one LevelDB uses', () => {
    // RFC 3720, B.4: 32 bytes of zeros, and the ASCII digits.
    expect(crc32c(Buffer.alloc(32))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it("the decoder reads LevelDB's own tables, compressed blocks included", async () => {
    const { dir, want } = await leveldb(20_000);
    const files = tables(dir);
    expect(files.length).toBeGreaterThan(0);
    const got = new Map<string, Buffer>();
    for (const f of files) {
      const bytes = fs.readFileSync(f);
      expect(tableDamage(bytes), f).toBeUndefined();
      // Internal keys: the user key, then 8 bytes of sequence number and kind.
      for (const [k, v] of tableEntries(bytes)) got.set(k.subarray(0, k.length - 8).toString('latin1'), v);
      // The repeated text is not in the file as written: Snappy compressed those blocks.
      expect(bytes.includes(Buffer.from('the same words again and again, '.repeat(8)))).toBe(false);
    }
    expect(got.size).toBe(want.size);
    for (const [k, v] of want) expect(got.get(k)?.equals(v), k).toBe(true);
    expect(await checkTables(dir)).toBeUndefined();
  });

  it("every flipped byte is found, except where the table still reads the same (the footer's padding)", async () => {
    const { dir } = await leveldb(3_000);
    const file = fs.readFileSync(tables(dir)[0]!);
    const footer = file.length - 48;
    // The footer's two block handles (four varints), as LevelDB decodes them.
    const handles = (b: Buffer): string => {
      const out: number[] = [];
      let at = footer;
      for (let h = 0; h < 4; h++) {
        let v = 0;
        for (let mul = 1; ; mul *= 128) {
          const x = b[at++]!;
          v += (x & 0x7f) * mul;
          if (!(x & 0x80)) break;
        }
        out.push(v);
      }
      return out.join(' ');
    };
    const missed: number[] = [];
    // Every byte of a small table would take long: all of its last 4 KiB (index, metaindex, filter
    // blocks, footer), and every 7th byte before.
    for (let at = 0; at < file.length; at += at < file.length - 4096 ? 7 : 1) {
      for (const bit of [0x01, 0x10, 0x80]) {
        const damaged = Buffer.from(file);
        damaged[at]! ^= bit;
        if (tableDamage(damaged) !== undefined) continue;
        // Harmless: in the footer's padding, or a handle's varint one byte longer with the same value.
        if (at >= footer && at < footer + 40 && handles(damaged) === handles(file)) continue;
        missed.push(at);
      }
    }
    expect(missed).toEqual([]);
    // Truncated anywhere: found.
    for (const len of [0, 10, 47, 48, file.length >> 1, file.length - 1]) expect(tableDamage(file.subarray(0, len)), `length ${len}`).toBeDefined();
  });

  it('a table checked once is not read again until it changes; the full check reads it anyway', async () => {
    const { dir } = await leveldb(2_000);
    expect(await checkTables(dir)).toBeUndefined();
    const recordFile = path.join(dir, CHECKED_FILE);
    const lines = fs.readFileSync(recordFile, 'latin1').trim().split('\n');
    expect(lines.length).toBe(tables(dir).length);
    // A byte changed: the file's ctime moved, so the next check reads it again and finds it.
    const f = tables(dir)[0]!;
    const b = fs.readFileSync(f);
    b[3]! ^= 1;
    fs.writeFileSync(f, b);
    expect(await checkTables(dir)).toMatch(new RegExp(`^${path.basename(f)}: .*fails its checksum`));
    // Told that this very file was checked (its current name, size, times and inode), the quick
    // check does not read it; the full one does.
    const st = fs.statSync(f, { bigint: true });
    const line = `${path.basename(f)} ${st.size} ${st.mtimeNs} ${st.ctimeNs} ${st.ino}`;
    fs.writeFileSync(recordFile, [line, ...lines.filter((l) => !l.startsWith(`${path.basename(f)} `))].join('\n') + '\n');
    expect(await checkTables(dir)).toBeUndefined();
    expect(await checkTables(dir, { all: true })).toMatch(/fails its checksum/);
  });

  it('tables LevelDB writes while a process has it open are recorded at its close without being read; changed later, they are read again', async () => {
    const dir = path.join(dirs.make('snap-kv-'), 'db');
    const open = async (): Promise<LocalKV> => {
      const kv = await LocalKV.tryOpen(dir);
      if (kv === LOCKED) throw new Error('locked');
      return kv;
    };
    const kv = await open();
    // Less than LevelDB's 4 MiB write buffer: it stays in the log. (A larger write would be
    // flushed in the background, and a flush the close cuts short leaves a table file LevelDB
    // never installed, written again from the log at the next open.)
    for (let i = 0; i < 20; i++) await kv.write(Array.from({ length: 100 }, (_, j) => [Buffer.from(`k-${i}-${j}`), randomBytes(1000)] as [Buffer, Buffer]));
    await kv.close();
    expect(tables(dir)).toEqual([]);
    // The next open writes the log into a table before it returns; its close records it.
    await (await open()).close();
    const written = tables(dir);
    expect(written.length).toBe(1);
    const stamps = await tableStamps(dir);
    const record = new Set(fs.readFileSync(path.join(dir, CHECKED_FILE), 'latin1').trim().split('\n'));
    expect(record).toEqual(new Set([...stamps].map(([name, stamp]) => `${name} ${stamp}`)));
    // The next open reads none of them (their stamps are in the record); damage written to one
    // moves its ctime, and the next open reads it and finds the damage. (File times tick with the
    // kernel's coarse clock, a few ms: a write in the same tick as LevelDB's would keep the stamp.)
    await new Promise((r) => setTimeout(r, 50));
    const f = written[0]!;
    const b = fs.readFileSync(f);
    b[3]! ^= 1;
    fs.writeFileSync(f, b);
    await expect(LocalKV.tryOpen(dir)).rejects.toThrow(/is damaged: \d+\.ldb: .*fails its checksum/);
  });

  it('recordWrittenTables adds only tables that were not there before the open', async () => {
    const { dir } = await leveldb(2_000);
    const all = await tableStamps(dir);
    expect(all.size).toBeGreaterThan(0);
    const [first] = [...all.keys()];
    // As if `first` had been there before the open (and not checked): it stays out of the record.
    await recordWrittenTables(dir, new Map([[first!, 'another stamp']]));
    const recordFile = path.join(dir, CHECKED_FILE);
    const record = fs.existsSync(recordFile) ? fs.readFileSync(recordFile, 'latin1').split('\n').filter((l) => l !== '') : [];
    expect(record.map((l) => l.split(' ')[0])).toEqual([...all.keys()].filter((n) => n !== first));
    expect(await checkTables(dir)).toBeUndefined();
    expect(fs.readFileSync(path.join(dir, CHECKED_FILE), 'latin1').trim().split('\n')).toHaveLength(all.size);
  });
});

describe('a damaged index is rebuilt instead of read', () => {
  function repoWithTwoSnapshots(): { repo: string; ids: string[] } {
    const root = dirs.make('snap-idx-');
    const repo = path.join(root, 'repo');
    const src = path.join(root, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'a'), randomBytes(50_000));
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const ids: string[] = [];
    for (const extra of ['one', 'two']) {
      fs.writeFileSync(path.join(src, extra), extra);
      const r = snap(['--repo', repo, 'create', '--json', src]);
      expect(r.code, r.stderr).toBe(0);
      ids.push((JSON.parse(r.stdout) as { id: string }).id);
    }
    // Opens that move the index's log into table files.
    for (let i = 0; i < 3; i++) expect(snap(['--repo', repo, 'list']).code).toBe(0);
    return { repo, ids: ids.sort() };
  }

  function listed(repo: string): { ids: string[]; stderr: string } {
    const r = snap(['--repo', repo, 'list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    return { ids: (JSON.parse(r.stdout) as { id: string }[]).map((s) => s.id).sort(), stderr: r.stderr };
  }

  it('a key length damaged so that LevelDB would abort: found at open, rebuilt, both snapshots listed', () => {
    const { repo, ids } = repoWithTwoSnapshots();
    const idx = path.join(repo, 'index');
    const files = tables(idx);
    expect(files.length).toBeGreaterThan(0);
    let damaged = 0;
    for (const f of files) {
      // The first entry of each data block: shared 0, then the key's length, which LevelDB asserts
      // to be at least 8 (the internal key's tail). In a Snappy block both are the first two bytes
      // of its first literal (after the length varint and a one-byte literal tag).
      const b = fs.readFileSync(f);
      for (const blk of tableBlocks(b).filter((x) => x.kind === 'data')) {
        let at = blk.offset;
        if (blk.compressed) {
          while (b[at++]! & 0x80);
          if ((b[at]! & 3) !== 0 || b[at]! >> 2 >= 60 || b[at]! >> 2 < 1) continue;
          at++;
        }
        expect(b[at], `${f} block at ${blk.offset}`).toBe(0);
        b[at + 1] = 5;
        damaged++;
      }
      fs.writeFileSync(f, b);
    }
    expect(damaged).toBeGreaterThan(0);
    const l = listed(repo);
    expect(l.ids).toEqual(ids);
    expect(l.stderr).toMatch(/index is damaged \(\d+\.ldb: [^)]*\); rebuilding/);
    expect(l.stderr).not.toMatch(/missing or incomplete/);
    expect(l.stderr).not.toMatch(/Assertion|Aborted|SNAP_INTERNAL/);
    expect(snap(['--repo', repo, 'check']).code).toBe(0);
  });

  it("a snapshot's time-ordered entry lost while its id entry stays: listed again from storage", async () => {
    const { repo, ids } = repoWithTwoSnapshots();
    const db = new Level<Buffer, Buffer>(path.join(repo, 'index'), ENC);
    await db.open();
    let gone = 0;
    for await (const k of db.keys({ gte: Buffer.from([K_SNAP]), lt: Buffer.from([K_SNAP + 1]) })) {
      if (k.toString('latin1').endsWith(ids[0]!)) {
        await db.del(k);
        gone++;
      }
    }
    await db.close();
    expect(gone).toBe(1);
    expect(listed(repo).ids).toEqual(ids);
    // And the index holds it again: a second open finds nothing to repair.
    expect(listed(repo).ids).toEqual(ids);
  });

  it("a snapshot's time-ordered entry under a damaged time: listed once, at its own time", async () => {
    const { repo, ids } = repoWithTwoSnapshots();
    const db = new Level<Buffer, Buffer>(path.join(repo, 'index'), ENC);
    await db.open();
    let moved = 0;
    for await (const [k, v] of db.iterator({ gte: Buffer.from([K_SNAP]), lt: Buffer.from([K_SNAP + 1]) })) {
      if (!k.toString('latin1').endsWith(ids[0]!)) continue;
      // 2026-... becomes 1026-...: the record is still the same, its key says another time.
      const wrong = Buffer.from(k);
      wrong[1] = '1'.charCodeAt(0);
      await db.batch([{ type: 'del', key: k }, { type: 'put', key: wrong, value: v }]);
      moved++;
    }
    await db.close();
    expect(moved).toBe(1);
    const r = snap(['--repo', repo, 'list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const got = (JSON.parse(r.stdout) as { id: string; time: string }[]);
    expect(got.map((x) => x.id).sort()).toEqual(ids);
    expect(got.map((x) => x.time)).toEqual([...got.map((x) => x.time)].sort());
  });
});
