// `snap copy` between repositories whose object ids are keyed differently (issues 12 and 13):
// plain -> encrypted -> encrypted (another password) -> plain, each copy restored byte for byte
// and `check --read-data` clean; a second copy copies nothing; a later snapshot reads only what
// changed; the encrypted copies hold no name or content of the source; `kill -9` in the middle of
// a copy leaves the destination check-clean and a rerun completes. The built CLI, real files,
// real LevelDB.
import { currentHost } from '../src/cli/host.js';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJson, snap, snapAsync, tmpDir } from './helpers/cli.js';
import { expectCheckClean, expectRestoresExactly, listSnapshots } from './helpers/remote-e2e.js';

const MARKER = 'QJXCOPYMARKERZV';

interface CopyJson {
  copied: { source: string; id: string }[];
  skipped: string[];
  objects_copied: number;
  objects_present: number;
  chunks_read: number;
  reidentified: boolean;
  rechunked: boolean;
}

interface Listed {
  id: string;
  tree: string;
  original?: string;
  parent?: string;
  time: string;
  tags: string[];
}

function run(args: string[], env: Record<string, string>): ReturnType<typeof snap> {
  const r = snap(args, { env });
  if (r.code !== 0) throw new Error(`snap ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r;
}

function copy(to: string, from: string, env: Record<string, string>, extra: string[] = []): CopyJson {
  return parseJson<CopyJson>(run(['--repo', to, '--json', 'copy', '--from-repo', from, ...extra], env).stdout);
}

function list(repo: string, env: Record<string, string>): Listed[] {
  return parseJson<Listed[]>(run(['--repo', repo, '--json', 'list'], env).stdout);
}

/** Every regular file under `dir` (none when it does not exist). */
function allFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

/** Files of `dir` whose path or bytes hold `needle`. */
function holders(dir: string, needle: string): string[] {
  const n = Buffer.from(needle);
  return allFiles(dir).filter((f) => f.includes(needle) || fs.readFileSync(f).includes(n));
}

/** A source with the marker in file and folder names and in contents (compressible and raw), a hard link, a symlink. */
function makeSource(base: string, bigBytes: number): string {
  const src = path.join(base, 'src');
  fs.mkdirSync(path.join(src, `dir-${MARKER}`, 'deep'), { recursive: true });
  fs.mkdirSync(path.join(src, 'empty'));
  for (let i = 0; i < 12; i++) fs.writeFileSync(path.join(src, `dir-${MARKER}`, `${MARKER}-${i}.txt`), `line ${i}: ${MARKER} is the secret\n`.repeat(1 + i * 40));
  fs.writeFileSync(path.join(src, `dir-${MARKER}`, 'deep', 'same.txt'), 'the same in every snapshot\n');
  const big = randomBytes(bigBytes);
  Buffer.from(`${MARKER} inside raw data`).copy(big, Math.floor(bigBytes / 2));
  fs.writeFileSync(path.join(src, 'big.bin'), big);
  fs.linkSync(path.join(src, 'big.bin'), path.join(src, 'big-link.bin'));
  fs.symlinkSync(`dir-${MARKER}/${MARKER}-1.txt`, path.join(src, 'link'));
  fs.writeFileSync(path.join(src, 'empty-file'), '');
  return src;
}

function setup(prefix: string): { base: string; env: Record<string, string> } {
  const base = tmpDir(prefix);
  return { base, env: { XDG_CACHE_HOME: path.join(base, 'cache'), SNAP_KDF_SCRYPT_N: '1024' } };
}

describe('snap copy re-identifies objects between differently keyed repositories', () => {
  it('plain -> encrypted -> encrypted (another password) -> plain: byte-identical restores, clean checks, no leak, nothing copied twice', () => {
    const { base, env } = setup('snap-copy-keyed-');
    const plain = path.join(base, 'plain');
    const encA = path.join(base, 'enc-a');
    const encB = path.join(base, 'enc-b');
    const back = path.join(base, 'back');
    const pwA = { ...env, SNAP_PASSWORD: 'password-of-A-1' };
    const pwB = { ...env, SNAP_PASSWORD: 'password-of-B-2' };
    run(['--repo', plain, 'init'], env);
    run(['--repo', encA, 'init', '--encrypt'], pwA);
    run(['--repo', encB, 'init', '--encrypt'], pwB);
    // `back` cuts chunks as `plain` does: each copy along the chain re-chunks with its destination's
    // chunker, so back at the start the files are cut as they were first.
    run(['--repo', back, 'init', '--copy-chunker-params-from', plain], env);
    const src = makeSource(base, 3 * 1024 * 1024 + 777);
    run(['--repo', plain, 'create', '--tag', 'first', src], env);
    const [orig] = list(plain, env);

    // plain -> encrypted A (one password: the destination's)
    const a1 = copy(encA, plain, pwA);
    expect([a1.copied.length, a1.reidentified]).toEqual([1, true]);
    expect(a1.objects_copied).toBeGreaterThan(5);
    // encrypted A -> encrypted B: two passwords; the source's from SNAP_FROM_PASSWORD
    const b1 = copy(encB, encA, { ...pwB, SNAP_FROM_PASSWORD: pwA.SNAP_PASSWORD });
    expect(b1.copied.length).toBe(1);
    // encrypted B -> plain: refused without --allow-plain (nothing written), then allowed
    const refused = snap(['--repo', back, 'copy', '--from-repo', encB], { env: { ...env, SNAP_FROM_PASSWORD: pwB.SNAP_PASSWORD } });
    expect([refused.code, refused.stderr]).toEqual([2, expect.stringMatching(/--allow-plain.*\[SNAP_USAGE\]/s)]);
    expect(allFiles(path.join(back, 'data'))).toEqual([]);
    const p1 = copy(back, encB, { ...env, SNAP_FROM_PASSWORD: pwB.SNAP_PASSWORD }, ['--allow-plain']);
    expect(p1.copied.length).toBe(1);

    // Each copy: restores exactly, check --read-data clean, the same backup (time, tags) naming the
    // first snapshot in `original`, and a tree id of its own repository.
    const ids = new Set<string>();
    for (const [repo, e] of [[encA, pwA], [encB, pwB], [back, env]] as const) {
      expectRestoresExactly(repo, 'latest', src, e);
      expectCheckClean(repo, e);
      const [s] = list(repo, e);
      expect([s!.time, s!.tags, s!.original]).toEqual([orig!.time, ['first'], orig!.id]);
      ids.add(s!.id);
    }
    expect(ids.size).toBe(3);
    expect(list(encA, pwA)[0]!.tree).not.toBe(orig!.tree);
    expect(list(encB, pwB)[0]!.tree).not.toBe(list(encA, pwA)[0]!.tree);
    // Back in a plain repository that cuts as the first does, the rewritten trees are byte for
    // byte the original ones (re-chunking and the canonical encoding): the same root tree id.
    expect(list(back, env)[0]!.tree).toBe(orig!.tree);

    // The encrypted repositories hold no name or content of the source.
    for (const repo of [encA, encB]) expect(holders(repo, MARKER)).toEqual([]);
    expect(holders(plain, MARKER).length).toBeGreaterThan(0); // the check can see it where it is

    // Copying again copies nothing, along the whole chain and straight from the first repository.
    for (const [to, from, e] of [
      [encA, plain, pwA],
      [encB, encA, { ...pwB, SNAP_FROM_PASSWORD: pwA.SNAP_PASSWORD }],
      [back, encB, { ...env, SNAP_FROM_PASSWORD: pwB.SNAP_PASSWORD }],
      [encB, plain, pwB],
      [back, encA, { ...env, SNAP_FROM_PASSWORD: pwA.SNAP_PASSWORD }],
    ] as const) {
      const again = copy(to, from, e, ['--allow-plain']);
      expect([again.copied, again.skipped.length, again.objects_copied, again.chunks_read]).toEqual([[], 1, 0, 0]);
    }
    expect(list(encB, pwB)).toHaveLength(1);
    expect(list(back, env)).toHaveLength(1);

    // A later snapshot: only the changed file's chunk is read from the source; the rest is paired
    // with the copy of the first snapshot.
    fs.writeFileSync(path.join(src, `dir-${MARKER}`, `${MARKER}-3.txt`), `changed ${MARKER}\n`);
    run(['--repo', plain, 'create', src], env);
    const a2 = copy(encA, plain, pwA, ['latest']);
    expect([a2.copied.length, a2.chunks_read]).toEqual([1, 1]);
    // one chunk and the trees from / down to the changed folder
    expect(a2.objects_copied).toBe(1 + path.join(src, `dir-${MARKER}`).split('/').length);
    // The copy's parent is the copy of the source's parent (the first snapshot's copy).
    const [firstA, secondA] = list(encA, pwA);
    expect([secondA!.parent, secondA!.original]).toEqual([firstA!.id, list(plain, env)[1]!.id]);
    const b2 = copy(encB, encA, { ...pwB, SNAP_FROM_PASSWORD: pwA.SNAP_PASSWORD });
    expect([b2.copied.length, b2.skipped.length, b2.chunks_read]).toEqual([1, 1, 1]);
    expectRestoresExactly(encB, 'latest', src, pwB);
    expectCheckClean(encB, pwB);
    expect(holders(encB, MARKER)).toEqual([]);
  }, 300_000);

  it('init --copy-chunker-params-from an encrypted repository is refused before anything is made: its chunker seed is secret', () => {
    const { base, env } = setup('snap-copy-params-secret-');
    const enc = path.join(base, 'enc');
    const plain = path.join(base, 'plain');
    const pw = { ...env, SNAP_PASSWORD: 'params-pw' };
    run(['--repo', enc, 'init', '--encrypt'], pw);
    const r = snap(['--repo', plain, 'init', '--copy-chunker-params-from', enc], { env: pw });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('[SNAP_USAGE]');
    expect(r.stderr).toContain('is encrypted');
    expect(r.stderr).not.toContain('SNAP_INTERNAL');
    expect(fs.existsSync(plain)).toBe(false);
    // Refused before a password is asked for: none given, the answer is the same (not "no password").
    const none = snap(['--repo', plain, 'init', '--copy-chunker-params-from', enc], { env: { ...env, SNAP_PASSWORD: '' } });
    expect(none.code, none.stderr).toBe(2);
    expect(none.stderr).toContain('[SNAP_USAGE]');
    expect(none.stderr).toContain('is encrypted');
    expect(none.stderr).not.toContain('SNAP_NO_PASSWORD');
    expect(fs.existsSync(plain)).toBe(false);
    // The seed is nowhere in the clear: not in the refused repository (none), nor in the message.
    const seedHolders = holders(base, '"gearSeed"');
    expect(seedHolders).toEqual([]);
    // Made without the option, the repository works, and a copy into it re-chunks.
    run(['--repo', plain, 'init'], env);
    const src = makeSource(base, 600 * 1024);
    run(['--repo', enc, 'create', src], pw);
    const c = copy(plain, enc, pw, ['--allow-plain']);
    expect([c.copied.length, c.rechunked]).toEqual([1, true]);
    expectRestoresExactly(plain, 'latest', src, env);
  });

  it('a wrong source password is named as the source\'s, before anything is written', () => {
    const { base, env } = setup('snap-copy-pw-');
    const encA = path.join(base, 'a');
    const encB = path.join(base, 'b');
    run(['--repo', encA, 'init', '--encrypt'], { ...env, SNAP_PASSWORD: 'aaa-pw' });
    run(['--repo', encB, 'init', '--encrypt'], { ...env, SNAP_PASSWORD: 'bbb-pw' });
    const src = makeSource(base, 1000);
    run(['--repo', encA, 'create', src], { ...env, SNAP_PASSWORD: 'aaa-pw' });
    // Without SNAP_FROM_PASSWORD the destination's password is tried on the source too.
    for (const extra of [{}, { SNAP_FROM_PASSWORD: 'wrong-pw' }] as Record<string, string>[]) {
      const r = snap(['--repo', encB, 'copy', '--from-repo', encA], { env: { ...env, SNAP_PASSWORD: 'bbb-pw', ...extra } });
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(/the source repository .*wrong password.*SNAP_FROM_PASSWORD.*\[SNAP_WRONG_PASSWORD\]/s);
      expect(r.stderr).not.toMatch(/aaa-pw|bbb-pw|wrong-pw/);
    }
    expect(allFiles(path.join(encB, 'data'))).toEqual([]);
    const pwFile = path.join(base, 'pw-a');
    fs.writeFileSync(pwFile, 'aaa-pw\n');
    const r = copy(encB, encA, { ...env, SNAP_PASSWORD: 'bbb-pw' }, ['--from-password-file', pwFile]);
    expect(r.copied).toHaveLength(1);
    expectRestoresExactly(encB, 'latest', src, { ...env, SNAP_PASSWORD: 'bbb-pw' });
  }, 120_000);

  it('kill -9 in the middle of a copy into an encrypted repository: the destination is check-clean, a rerun completes', async () => {
    const { base, env } = setup('snap-copy-kill-');
    const plain = path.join(base, 'plain');
    const enc = path.join(base, 'enc');
    const pw = { ...env, SNAP_PASSWORD: 'kill-test-pw' };
    run(['--repo', plain, 'init'], env);
    // Small packs, so packs land long before the copy ends. The config of an encrypted repository is
    // authenticated by its key file (a config changed afterwards is refused), so the repository is
    // made with them: in-process, as the CLI's init has no pack size option.
    const { Repository } = await import('../src/repo/repository.js');
    const cache = path.join(env.XDG_CACHE_HOME!, 'snap');
    const made = await Repository.init(
      enc,
      { host: currentHost(), sink: {}, encrypt: { password: Buffer.from(pw.SNAP_PASSWORD), scrypt: { N: 1024, r: 8, p: 1 } }, indexCache: path.join(cache, 'index'), known: path.join(cache, 'known') },
      { packSize: 256 * 1024 },
    );
    await made.close();
    const src = makeSource(base, 48 * 1024 * 1024);
    run(['--repo', plain, 'create', src], env);

    const victim = snapAsync(['--repo', enc, 'copy', '--from-repo', plain], { env: pw });
    victim.stdout.resume();
    victim.stderr.resume();
    const gone = new Promise<void>((r) => victim.on('close', () => r()));
    const packs = (): number => allFiles(path.join(enc, 'data')).filter((f) => !path.basename(f).startsWith('.tmp-')).length;
    const deadline = Date.now() + 60_000;
    while (packs() < 3 && victim.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(victim.exitCode).toBeNull(); // still copying: the kill lands in the middle
    victim.kill('SIGKILL');
    await gone;
    expect(packs()).toBeGreaterThanOrEqual(3);
    expect(listSnapshots(enc, pw)).toEqual([]);
    expectCheckClean(enc, pw);

    const rerun = copy(enc, plain, pw);
    expect(rerun.copied).toHaveLength(1);
    expect(rerun.objects_present).toBeGreaterThan(0); // what the killed copy stored is not stored again
    expectRestoresExactly(enc, 'latest', src, pw);
    expectCheckClean(enc, pw);
    expect(holders(enc, MARKER)).toEqual([]);
  }, 300_000);
});

describe('snap copy re-chunks when the destination cuts chunks otherwise', () => {
  /** Chunks (blob objects) a repository holds, as `snap stats --json` counts them. */
  function blobCount(repo: string, env: Record<string, string>): number {
    return (JSON.parse(run(['--repo', repo, '--json', 'stats'], env).stdout) as { blobs: number }).blobs;
  }

  it('plain -> plain with another seed, and plain -> encrypted: the copy is cut as a backup there cuts it (a backup of the same files adds no chunk), restores exactly; a later copy reads only what changed', () => {
    const { base, env } = setup('snap-copy-rechunk-');
    const a = path.join(base, 'a');
    const b = path.join(base, 'b');
    const same = path.join(base, 'same');
    const enc = path.join(base, 'enc');
    const pw = { ...env, SNAP_PASSWORD: 'rechunk-pw' };
    run(['--repo', a, 'init'], env);
    run(['--repo', b, 'init'], env); // another random gear seed
    run(['--repo', same, 'init', '--copy-chunker-params-from', a], env);
    run(['--repo', enc, 'init', '--encrypt'], pw);
    // Files of several chunks (512 KiB to 8 MiB each under the default chunker), and small ones.
    const src = makeSource(base, 9 * 1024 * 1024 + 4321);
    fs.writeFileSync(path.join(src, 'second.bin'), randomBytes(5 * 1024 * 1024));
    run(['--repo', a, 'create', src], env);

    for (const [dst, e] of [[b, env], [enc, pw]] as const) {
      const c = copy(dst, a, e);
      expect([c.copied.length, c.rechunked, c.reidentified]).toEqual([1, true, true]);
      expectRestoresExactly(dst, 'latest', src, e);
      expectCheckClean(dst, e);
      // The copied chunks are the destination's own cut: backing the same files up there stores no new chunk.
      const before = blobCount(dst, e);
      const backup = parseJson<{ id: string }>(run(['--repo', dst, '--json', 'create', src], e).stdout);
      expect(backup.id).toBeTruthy();
      expect(blobCount(dst, e), 'chunks stored by a backup of the copied files').toBe(before);
      // And below the source folder the two snapshots are the same (its parent folders' times
      // changed in between): the copy is what a backup there makes, chunk for chunk.
      const [copied, own] = list(dst, e);
      const d = JSON.parse(run(['--repo', dst, '--json', 'diff', copied!.id, own!.id, src], e).stdout) as { changes: unknown[] };
      expect(d.changes).toEqual([]);
    }

    // A destination that cuts as the source does is not re-chunked: same ids, the source's records.
    const s1 = copy(same, a, env);
    expect([s1.copied.length, s1.rechunked, s1.reidentified]).toEqual([1, false, false]);
    expect(list(same, env)[0]!.id).toBe(list(a, env)[0]!.id);

    // A later snapshot with one small file changed: the re-chunking copy reads that file's chunk only.
    fs.writeFileSync(path.join(src, 'empty-file'), 'not empty any more\n');
    run(['--repo', a, 'create', src], env);
    const c2 = copy(b, a, env, ['latest']);
    expect([c2.copied.length, c2.chunks_read, c2.rechunked]).toEqual([1, 1, true]);
    expectRestoresExactly(b, 'latest', src, env);
    expectCheckClean(b, env);
    // Copying again copies nothing.
    const again = copy(b, a, env);
    expect([again.copied, again.objects_copied, again.chunks_read]).toEqual([[], 0, 0]);
  }, 300_000);
});
