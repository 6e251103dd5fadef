// `snap copy` end to end: local -> S3 (radosgw) -> SFTP (OpenSSH) -> local, restored byte for
// byte at the end; local plain -> encrypted S3 (the 3-2-1 recipe); a second copy sends only what is new; a damaged object in the source stops the
// copy before the destination records a snapshot that would need it.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJson, snap, tmpDir } from './helpers/cli.js';
import { type S3Target, s3Target } from './helpers/s3-target.js';
import { TestSshd, sshdMissing } from './helpers/sshd.js';
import { expectCheckClean, expectRestoresExactly, listSnapshots, makeSource, ok } from './helpers/remote-e2e.js';

const BUCKET = 'e2e-copy';
let target: S3Target;
let sshd: TestSshd | undefined;
const missing = sshdMissing();

beforeAll(async () => {
  target = await s3Target(BUCKET);
  if (!missing) sshd = await TestSshd.start();
}, 900_000);
afterAll(async () => {
  await sshd?.close();
});

/** A client of the test gateway: its keys, and a cache and home of its own. */
function s3Env(info: Exclude<S3Target['info'], string>): Record<string, string> {
  const home = tmpDir('snap-client-');
  return {
    AWS_ACCESS_KEY_ID: info.account.accessKeyId,
    AWS_SECRET_ACCESS_KEY: info.account.secretAccessKey,
    AWS_REGION: info.account.region,
    XDG_CACHE_HOME: path.join(home, 'cache'),
    HOME: home,
  };
}

interface CopyJson {
  copied: { source: string; id: string }[];
  skipped: string[];
  objects_copied: number;
  objects_present: number;
}

describe('snap copy between any two repositories', () => {
  it('out of an encrypted repository into a plain one is refused without --allow-plain, before anything is written', () => {
    const base = tmpDir('snap-copy-enc-');
    const env = { SNAP_PASSWORD: 'copy-pw', SNAP_KDF_SCRYPT_N: '1024', XDG_CACHE_HOME: path.join(base, 'cache') };
    const plain = path.join(base, 'plain');
    const enc = path.join(base, 'enc');
    ok(['--repo', plain, 'init'], env);
    ok(['--repo', enc, 'init', '--encrypt'], env);
    const src = makeSource('copy-enc', 64 * 1024);
    ok(['--repo', plain, 'create', src], env);
    ok(['--repo', enc, 'create', src], env);
    const before = (dir: string): string[] => fs.readdirSync(path.join(dir, 'data'), { recursive: true }).map(String).sort();
    const plainPacks = before(plain);
    const r = snap(['--repo', plain, 'copy', '--from-repo', enc], { env });
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/source .* is encrypted and the destination is not.*--allow-plain.*\[SNAP_USAGE\]/s)]);
    expect(before(plain)).toEqual(plainPacks);
    expect(listSnapshots(plain, env)).toHaveLength(1);
  });

  it('the 3-2-1 recipe: a local plain repository copied to an encrypted S3 one restores byte for byte; the next copy reads only what changed', (ctx) => {
    if (typeof target.info === 'string') return ctx.skip();
    const env = { ...s3Env(target.info), SNAP_PASSWORD: 'off-site-pw', SNAP_KDF_SCRYPT_N: '1024' };
    const local = path.join(tmpDir(), 'local');
    const s3 = `s3:${target.info.account.endpoint}/${BUCKET}/e-${randomBytes(6).toString('hex')}`;
    ok(['--repo', local, 'init'], env);
    ok(['--repo', s3, 'init'], env); // encrypted: the default for a remote repository
    const src = makeSource('copy-s3-enc', 3 * 1024 * 1024);
    ok(['--repo', local, 'create', src], env);
    const first = parseJson<CopyJson & { reidentified: boolean }>(ok(['--repo', s3, '--json', 'copy', '--from-repo', local], env).stdout);
    expect([first.copied.length, first.reidentified]).toEqual([1, true]);
    expectRestoresExactly(s3, 'latest', src, env);
    fs.writeFileSync(path.join(src, 'sub', 'f5.txt'), 'changed for the second copy\n');
    ok(['--repo', local, 'create', src], env);
    const second = parseJson<CopyJson & { chunks_read: number }>(ok(['--repo', s3, '--json', 'copy', '--from-repo', local], env).stdout);
    expect([second.copied.length, second.skipped.length, second.chunks_read]).toEqual([1, 1, 1]);
    const again = parseJson<CopyJson>(ok(['--repo', s3, '--json', 'copy', '--from-repo', local], env).stdout);
    expect([again.copied, again.skipped.length, again.objects_copied]).toEqual([[], 2, 0]);
    expectRestoresExactly(s3, 'latest', src, env);
    expectCheckClean(s3, env);
  }, 300_000);

  it('local -> S3 -> SFTP -> local restores byte for byte; a second copy sends only the new objects', (ctx) => {
    if (typeof target.info === 'string' || !sshd) return ctx.skip();
    const env = { ...s3Env(target.info), SNAP_SSH_COMMAND: `ssh -F ${sshd.clientConfig()}` };
    const local = path.join(tmpDir(), 'local');
    const s3 = `s3:${target.info.account.endpoint}/${BUCKET}/c-${randomBytes(6).toString('hex')}`;
    const sftp = sshd.location(path.join(sshd.dir, `copy-${randomBytes(4).toString('hex')}`));
    const back = path.join(tmpDir(), 'back');
    // Plain repositories that cut chunks as `local` does: copies keep objects and ids as they are
    // (copy-keyed.test.ts has the re-chunking copies between repositories that cut otherwise).
    ok(['--repo', local, 'init'], env);
    ok(['--repo', s3, 'init', '--no-encryption', '--copy-chunker-params-from', local], env);
    ok(['--repo', sftp, 'init', '--no-encryption', '--copy-chunker-params-from', local], env);
    ok(['--repo', back, 'init', '--copy-chunker-params-from', local], env);

    const src = makeSource('copy', 4 * 1024 * 1024);
    ok(['--repo', local, 'create', src], env);
    const chain = [local, s3, sftp, back];
    for (let i = 1; i < chain.length; i++) {
      const r = parseJson<CopyJson>(ok(['--repo', chain[i]!, '--json', 'copy', '--from-repo', chain[i - 1]!], env).stdout);
      expect(r.copied).toHaveLength(1);
      expect(r.copied[0]!.id).toBe(r.copied[0]!.source);
    }
    const first = listSnapshots(local, env)[0]!.id;
    for (const repo of chain) expect(listSnapshots(repo, env).map((s) => s.id)).toEqual([first]);
    expectRestoresExactly(back, first, src, env);

    // A change of one small file: the second copy sends that file's chunk and the trees above it
    // (one per folder from / down to sub/).
    fs.writeFileSync(path.join(src, 'sub', 'f5.txt'), 'changed\n');
    const changedObjects = 1 + path.join(src, 'sub').split('/').length;
    ok(['--repo', local, 'create', src], env);
    for (let i = 1; i < chain.length; i++) {
      const r = parseJson<CopyJson>(ok(['--repo', chain[i]!, '--json', 'copy', '--from', chain[i - 1]!, 'latest'], env).stdout);
      expect(r.copied).toHaveLength(1);
      expect(r.objects_copied).toBe(changedObjects);
      expect(r.objects_present).toBeGreaterThan(0);
    }
    // Everything again: nothing to do.
    const again = parseJson<CopyJson>(ok(['--repo', back, '--json', 'copy', '--from-repo', sftp], env).stdout);
    expect([again.copied, again.skipped.length, again.objects_copied]).toEqual([[], 2, 0]);
    expectRestoresExactly(back, 'latest', src, env);
    for (const repo of [s3, sftp, back]) expectCheckClean(repo, env);
  }, 300_000);

  it('a damaged object in the source stops the copy; the destination records no snapshot and stays clean', (ctx) => {
    if (typeof target.info === 'string') return ctx.skip();
    const env = s3Env(target.info);
    const local = path.join(tmpDir(), 'local');
    const s3 = `s3:${target.info.account.endpoint}/${BUCKET}/d-${randomBytes(6).toString('hex')}`;
    ok(['--repo', local, 'init'], env);
    ok(['--repo', s3, 'init', '--no-encryption'], env);
    const src = makeSource('damaged', 2 * 1024 * 1024);
    ok(['--repo', local, 'create', src], env);
    // Flip one byte in the middle of the largest pack (file data, not its header).
    const packs: string[] = [];
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) (e.isDirectory() ? walk(path.join(d, e.name)) : packs.push(path.join(d, e.name)));
    };
    walk(path.join(local, 'data'));
    const pack = packs.sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0]!;
    const bytes = fs.readFileSync(pack);
    bytes[Math.floor(bytes.length / 3)]! ^= 0xff;
    fs.chmodSync(pack, 0o600);
    fs.writeFileSync(pack, bytes);

    const r = snap(['--repo', s3, 'copy', '--from-repo', local], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/SNAP_CORRUPT/);
    expect(listSnapshots(s3, env)).toEqual([]);
    expectCheckClean(s3, env);
  });

  it('init --copy-chunker-params-from copies without re-chunking; another chunker re-chunks: either way a backup of the copied data there adds only what is new', (ctx) => {
    if (typeof target.info === 'string') return ctx.skip();
    const env = s3Env(target.info);
    const local = path.join(tmpDir(), 'local');
    const same = `s3:${target.info.account.endpoint}/${BUCKET}/p-${randomBytes(6).toString('hex')}`;
    const other = `s3:${target.info.account.endpoint}/${BUCKET}/q-${randomBytes(6).toString('hex')}`;
    ok(['--repo', local, 'init'], env);
    ok(['--repo', same, 'init', '--no-encryption', '--copy-chunker-params-from', local], env);
    ok(['--repo', other, 'init', '--no-encryption'], env);
    const src = makeSource('params', 6 * 1024 * 1024);
    ok(['--repo', local, 'create', src], env);
    interface Made { summary: { objectsAdded: number } }
    const added = (repo: string, rechunked: boolean): number => {
      const c = parseJson<{ rechunked: boolean; copied: { source: string; id: string }[] }>(ok(['--repo', repo, '--json', 'copy', '--from-repo', local], env).stdout);
      expect(c.rechunked).toBe(rechunked);
      // Without re-chunking the source's record is kept, id and all; re-chunked, it is rewritten.
      expect(c.copied[0]!.id === c.copied[0]!.source).toBe(!rechunked);
      // The same files (and one new) backed up into the destination itself.
      fs.writeFileSync(path.join(src, 'touch'), randomBytes(8));
      const s = parseJson<Made>(ok(['--repo', repo, '--json', 'create', src], env).stdout);
      return s.summary.objectsAdded;
    };
    // Only what is new is added (the new small file, the trees above it): the copied big file's
    // chunks are those the destination's own chunker cuts, with the source's parameters or its own.
    const sameAdded = added(same, false);
    const otherAdded = added(other, true);
    expect(sameAdded).toBeLessThanOrEqual(1 + path.join(src, 'touch').split('/').length);
    expect(otherAdded).toBeLessThanOrEqual(1 + path.join(src, 'touch').split('/').length);
  });
});
