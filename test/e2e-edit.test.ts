// Snapshot editing: `snap tag` and `snap rewrite` write records that replace the old ones; the
// old record goes only once the new one is durable, and rewrite --forget + gc frees the data.
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { newRepo, parseJson, snap, snapBytes, tmpDir } from './helpers/cli.js';
import { FaultBackend } from './helpers/fault-backend.js';
import { LocalBackend } from '../src/backend/local.js';
import { Repository } from '../src/repo/repository.js';
import { nullSink } from '../src/core/progress.js';
import { tagSnapshots } from '../src/ops/maintain/tag.js';
import { isSnapError, SnapError } from '../src/core/errors.js';
import { fsDecode } from '../src/core/bytes.js';
import { compileExcludes } from '../src/model/exclude.js';
import { rewriteSnapshots } from '../src/ops/maintain/rewrite.js';
import { currentHost } from '../src/cli/host.js';

interface Listed {
  id: string;
  tags: string[];
  original?: string;
  paths: string[];
  excludes: string[];
  summary: { totalFiles: number };
}

const list = (repo: string): Listed[] => JSON.parse(snap(['--repo', repo, '--json', 'list']).stdout) as Listed[];

/** Every file under dir, as one buffer per file (to look for bytes that must be gone). */
function filesUnder(dir: string): Buffer[] {
  const out: Buffer[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(fs.readFileSync(path.join(e.parentPath, e.name)));
  }
  return out;
}

describe('snap tag', () => {
  let repo: string;
  let src: string;
  beforeAll(() => {
    repo = newRepo();
    src = path.join(tmpDir(), 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f'), 'f');
    expect(snap(['--repo', repo, 'create', src, '--tag', 'nightly', '--tag', 'old']).code).toBe(0);
  });

  it('--add/--remove/--set replace the record (original names the first), and the old record is gone', () => {
    const [first] = list(repo);
    const dry = snap(['--repo', repo, 'tag', first!.id.slice(0, 8), '--add', 'keep', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(list(repo).map((s) => s.id)).toEqual([first!.id]);
    const r = snap(['--repo', repo, 'tag', 'latest', '--add', 'keep,important', '--remove', 'old']);
    expect(r.code, r.stderr).toBe(0);
    const [second] = list(repo);
    expect(second!.tags).toEqual(['important', 'keep', 'nightly']);
    expect(second!.original).toBe(first!.id);
    expect(fs.existsSync(path.join(repo, 'snapshots', first!.id))).toBe(false);
    expect(snap(['--repo', repo, 'tag', 'latest', '--set', 'only']).code).toBe(0);
    const [third] = list(repo);
    expect(third!.tags).toEqual(['only']);
    expect(third!.original).toBe(first!.id); // still the first of the chain
    const same = snap(['--repo', repo, 'tag', 'latest', '--add', 'only']);
    expect(same.stdout).toMatch(/tags unchanged/);
    expect(list(repo).map((s) => s.id)).toEqual([third!.id]);
    expect(snap(['--repo', repo, 'check']).code).toBe(0);
  });

  it('usage errors: nothing to do, --set with --add', () => {
    expect(snap(['--repo', repo, 'tag', 'latest']).code).toBe(2);
    expect(snap(['--repo', repo, 'tag', 'latest', '--set', 'a', '--add', 'b']).code).toBe(2);
  });

  it('a failure writing the new record leaves the old one; a failure deleting the old leaves both, never neither', async () => {
    for (const fault of [{ op: 'put', prefix: 'snapshots/' }, { op: 'delete', prefix: 'snapshots/' }] as const) {
      const before = list(repo);
      const r = await Repository.open(repo, { host: currentHost(), sink: nullSink, backend: (root) => new FaultBackend(new LocalBackend(root), { ...fault, n: 1, kind: 'EIO' }) });
      let failed = false;
      try {
        await tagSnapshots(r, await r.listSnapshots(), { add: [`t-${fault.op}`] });
      } catch (e) {
        failed = isSnapError(e);
      } finally {
        await r.close();
      }
      expect(failed).toBe(true);
      const after = list(repo);
      expect(after.map((s) => s.id)).toContain(before[0]!.id);
      expect(after.length).toBe(fault.op === 'put' ? 1 : 2);
      if (fault.op === 'delete') expect(snap(['--repo', repo, 'forget', after.find((s) => s.id !== before[0]!.id)!.id]).code).toBe(0);
    }
  });
});

describe('snap rewrite', () => {
  let repo: string;
  let src: string;
  const secret = randomBytes(96 * 1024); // incompressible: stored raw, so its bytes are findable in packs
  beforeAll(() => {
    repo = newRepo();
    src = path.join(tmpDir(), 'src');
    fs.mkdirSync(path.join(src, 'keys'), { recursive: true });
    fs.writeFileSync(path.join(src, 'keys', 'id_secret'), secret);
    fs.writeFileSync(path.join(src, 'keys', 'public'), 'public');
    fs.writeFileSync(path.join(src, 'notes.txt'), 'notes');
    fs.writeFileSync(path.join(src, 'data.bin'), randomBytes(200 * 1024));
    expect(snap(['--repo', repo, 'create', src, '--tag', 'a']).code).toBe(0);
    fs.writeFileSync(path.join(src, 'notes.txt'), 'notes, edited');
    expect(snap(['--repo', repo, 'create', src]).code).toBe(0);
  });

  it('--dry-run lists what would be removed and changes nothing', () => {
    const before = list(repo).map((s) => s.id);
    const r = snap(['--repo', repo, 'rewrite', ...before, '--exclude', 'id_secret', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.match(/would remove from [0-9a-f]{8}: .*keys\/id_secret$/gm)?.length).toBe(2);
    expect(list(repo).map((s) => s.id)).toEqual(before);
  });

  it('without --forget: new snapshots without the file, originals kept', () => {
    const before = list(repo);
    const r = snap(['--repo', repo, '--json', 'rewrite', before[1]!.id, '--exclude', `${src}/keys/id_secret`]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { snapshots: { original: string; replacement: string; removed: { path: string }[]; forgotten: boolean }[] };
    // JSON paths as everywhere else: lossless text beside their exact bytes.
    expect(doc.snapshots[0]!.removed).toEqual([{ path: `${src}/keys/id_secret`, path_hex: Buffer.from(`${src}/keys/id_secret`).toString('hex'), type: 'file' }]);
    expect(doc.snapshots[0]!.forgotten).toBe(false);
    const after = list(repo);
    expect(after.map((s) => s.id)).toEqual(expect.arrayContaining([before[0]!.id, before[1]!.id, doc.snapshots[0]!.replacement]));
    const rep = after.find((s) => s.id === doc.snapshots[0]!.replacement)!;
    expect(rep.original).toBe(before[1]!.id);
    expect(rep.summary.totalFiles).toBe(before[1]!.summary.totalFiles - 1);
    const cat = snap(['--repo', repo, 'cat', rep.id, 'keys/id_secret']);
    expect(cat.code).toBe(1);
    expect(snap(['--repo', repo, 'cat', rep.id, 'keys/public']).stdout).toBe('public');
    expect(snap(['--repo', repo, 'forget', rep.id]).code).toBe(0);
  });

  it('with --forget, gc then frees the data: the secret bytes are gone from the repository', () => {
    const needle = secret.subarray(1000, 1064);
    expect(filesUnder(repo).some((b) => b.includes(needle))).toBe(true);
    const ids = list(repo).map((s) => s.id);
    const r = snap(['--repo', repo, 'rewrite', ...ids, '--exclude', 'keys/id_secret', '--forget']);
    expect(r.code, r.stderr).toBe(0);
    const after = list(repo);
    expect(after.length).toBe(2);
    expect(after.every((s) => ids.includes(s.original!) && !ids.includes(s.id))).toBe(true);
    const gc = snap(['--repo', repo, 'gc', '--max-unused', '0%']);
    expect(gc.code, gc.stderr).toBe(0);
    expect(filesUnder(repo).some((b) => b.includes(needle))).toBe(false);
    const check = snap(['--repo', repo, 'check', '--read-data']);
    expect(check.code, check.stdout).toBe(0);
    const t = tmpDir();
    expect(snap(['--repo', repo, 'restore', 'latest', t]).code).toBe(0);
    expect(fs.existsSync(path.join(t, src, 'keys', 'id_secret'))).toBe(false);
    expect(fs.readFileSync(path.join(t, src, 'notes.txt'), 'utf8')).toBe('notes, edited');
  });

  it('a pattern matching nothing changes nothing and says so', () => {
    const before = list(repo).map((s) => s.id);
    const r = snap(['--repo', repo, 'rewrite', 'latest', '--exclude', 'no-such-file']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/nothing matched; unchanged/);
    expect(r.stderr).toMatch(/exclude pattern 'no-such-file' matched nothing/);
    expect(list(repo).map((s) => s.id)).toEqual(before);
  });
});

describe('tag and rewrite take bytes and stop on the CLI signal (issue 10, defects 4 and 5)', () => {
  let repo: string;
  let src: Buffer;
  const secretName = Buffer.from([0x73, 0x65, 0x63, 0xff]); // 'sec\xff'
  beforeAll(() => {
    repo = newRepo();
    src = Buffer.concat([Buffer.from(path.join(tmpDir(), 'src')), Buffer.from([0xfe])]);
    fs.mkdirSync(src);
    fs.writeFileSync(Buffer.concat([src, Buffer.from('/'), secretName]), 'secret');
    for (let i = 0; i < 50; i++) fs.writeFileSync(Buffer.concat([src, Buffer.from(`/keep-${i}`)]), `keep ${i}`);
    const c = snapBytes(['--repo', repo, 'create', src]);
    expect(c.code, c.stderr).toBe(0);
  });

  it('rewrite --exclude and --exclude-file take patterns that are not UTF-8; JSON names the removed path losslessly', () => {
    const before = list(repo).map((s) => s.id);
    const dry = snapBytes(['--repo', repo, '--json', 'rewrite', 'latest', '--exclude', secretName, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    const removed = Buffer.concat([src, Buffer.from('/'), secretName]);
    const doc = parseJson<{ snapshots: { removed: unknown[] }[] }>(dry.stdout);
    expect(doc.snapshots[0]!.removed).toEqual([{ path: fsDecode(removed), path_hex: removed.toString('hex'), type: 'file' }]);
    expect(list(repo).map((s) => s.id)).toEqual(before);

    // The text listing shows the name escaped; the pattern comes from a file, as bytes.
    const patterns = path.join(tmpDir(), 'patterns');
    fs.writeFileSync(patterns, Buffer.concat([Buffer.from('# secrets\n'), secretName, Buffer.from('\n')]));
    const r = snap(['--repo', repo, 'rewrite', 'latest', '--exclude-file', patterns]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^removed from [0-9a-f]{8}: .*src\\xfe\/sec\\xff$/m);
    const after = list(repo);
    expect(after.length).toBe(2);
    const rep = after.find((s) => !before.includes(s.id))!;
    expect(snapBytes(['--repo', repo, 'cat', rep.id, removed]).code).toBe(1);
    expect(snapBytes(['--repo', repo, 'cat', rep.id, 'keep-7']).stdout).toBe('keep 7');
    expect(snap(['--repo', repo, 'forget', rep.id]).code).toBe(0);
  });

  it('a tag that is not UTF-8 is refused (records hold tags as text)', () => {
    const before = list(repo).map((s) => s.id);
    for (const opt of ['--add', '--remove', '--set']) {
      const r = snapBytes(['--repo', repo, 'tag', 'latest', opt, Buffer.from([0x74, 0xff])]);
      expect([r.code, r.stderr], opt).toEqual([2, "snap: a tag must be UTF-8 text: 't\\xff' is not [SNAP_USAGE]\n"]);
    }
    expect(list(repo).map((s) => s.id)).toEqual(before);
  });

  it('rewriteSnapshots stops at the next entry once its signal is aborted: no new record, nothing damaged', async () => {
    const before = list(repo).map((s) => s.id);
    const r = await Repository.open(repo, { host: currentHost(), sink: nullSink });
    const ac = new AbortController();
    let seen = 0;
    let thrown: unknown;
    try {
      const snaps = await r.listSnapshots();
      await rewriteSnapshots(r, snaps, {
        rules: compileExcludes(['keep-*']),
        patterns: ['keep-*'],
        program: 'test',
        signal: ac.signal,
        // Stopped while the walk is under way: after the first removed entry.
        onRemoved: () => {
          seen++;
          ac.abort(new SnapError('SNAP_INTERRUPTED', 'interrupted by SIGINT'));
        },
      });
    } catch (e) {
      thrown = e;
    } finally {
      await r.close();
    }
    expect(isSnapError(thrown, 'SNAP_INTERRUPTED')).toBe(true);
    expect(seen).toBe(1);
    expect(list(repo).map((s) => s.id)).toEqual(before);
    const check = snap(['--repo', repo, 'check']);
    expect(check.code, check.stdout + check.stderr).toBe(0);
  });
});
