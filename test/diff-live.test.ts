// `snap diff REF --live [PATH]` (issue 21) through the built CLI on real files: a tree with known
// edits (content, metadata only, added, removed, a type change, a retargeted symlink, a name that
// is not UTF-8) lists exactly those; a same-size change with its mtime put back is still found
// (its ctime), and one the stat cannot see (a snapshot dated later) only with --read-all.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canSetpriv, parseJson, snap, type RunResult } from './helpers/cli.js';
import { cleanupScratch, scratchDir } from './helpers/maint.js';

afterAll(() => cleanupScratch());

interface DiffJson {
  to: string;
  read_all: boolean;
  changes: { kind: string; path: string; path_hex: string; type: string; aspects: string[]; fields: string[] }[];
  summary: { added: { files: number }; removed: { files: number }; modified: { content: number; metadataOnly: number; type: number } };
}

const LATIN1 = Buffer.from([0x6e, 0x61, 0xef, 0x76, 0x65]); // "na\xefve"
const canSetXattr = fs.existsSync(path.join(import.meta.dirname, '..', 'node_modules', '@napi-rs', 'xattr')) && spawnSync('setfattr', ['--version']).status === 0;

/** Give `to` the times of `from`, to the nanosecond (`to` is made when missing). */
function touchRef(from: string, to: string): void {
  if (!fs.existsSync(to)) fs.writeFileSync(to, '');
  expect(spawnSync('touch', ['-h', '-r', from, to]).status).toBe(0);
}

function setup() {
  const dir = scratchDir('snap-live-');
  const repo = path.join(dir, 'repo');
  const src = path.join(dir, 'src');
  const run = (args: (string)[]): RunResult => snap(['--repo', repo, ...args], { cwd: dir });
  expect(run(['init']).code).toBe(0);
  const w = (rel: string, data: string): void => {
    fs.mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
    fs.writeFileSync(path.join(src, rel), data);
  };
  w('keep.txt', 'unchanged\n');
  w('content.txt', 'old content\n');
  w('same-size.txt', 'abcdef\n');
  w('meta.txt', 'mode changes\n');
  w('gone.txt', 'removed\n');
  w('typechg', 'a file that becomes a folder\n');
  w('sub/inner.txt', 'inner\n');
  w('sub/deep/leaf.txt', 'leaf\n');
  w('attrs.txt', 'gets an attribute\n');
  fs.writeFileSync(Buffer.concat([Buffer.from(`${src}/sub/`), LATIN1]), 'bytes\n');
  fs.symlinkSync('keep.txt', path.join(src, 'link'));
  const backup = (extra: string[] = []): string => {
    const r = run(['--json', 'create', '--exclude', '*.tmp', ...extra, src]);
    expect(r.code, r.stderr).toBe(0);
    return parseJson<{ id: string }>(r.stdout).id;
  };
  const live = (args: string[], code = 0): DiffJson => {
    const r = run(['--json', 'diff', ...args]);
    expect(r.code, r.stderr).toBe(code);
    return parseJson<DiffJson>(r.stdout);
  };
  return { dir, repo, src, run, backup, live };
}

/** Each change as `kind rel aspects fields`, in the order reported. */
function brief(d: DiffJson, src: string): string[] {
  return d.changes.map((c) => {
    const p = Buffer.from(c.path_hex, 'hex');
    const rel = p.subarray(Buffer.from(src).length).toString('latin1');
    return `${c.kind} ${rel} ${c.aspects.join(',')} ${c.fields.join(',')}`.trim();
  });
}

describe('snap diff --live', () => {
  it('lists exactly the edits made on disk since the snapshot: content, metadata only, added, removed, type, symlink, a name that is not UTF-8', () => {
    const t = setup();
    const id = t.backup();
    // Folders' times are put back after the edits (from references outside the tree), so each
    // edit shows once, not also as its folder's new mtime.
    const refs = path.join(t.dir, 'refs');
    fs.mkdirSync(refs);
    const dirs = ['', 'sub', 'sub/deep'];
    dirs.forEach((d, i) => touchRef(path.join(t.src, d), path.join(refs, `d${i}`)));
    expect(t.live([id, '--live']).changes).toEqual([]);

    fs.writeFileSync(path.join(t.src, 'content.txt'), 'new and longer content\n');
    touchRef(path.join(t.src, 'same-size.txt'), path.join(refs, 'same'));
    fs.writeFileSync(path.join(t.src, 'same-size.txt'), 'ABCDEF\n');
    touchRef(path.join(refs, 'same'), path.join(t.src, 'same-size.txt'));
    fs.chmodSync(path.join(t.src, 'meta.txt'), 0o600);
    fs.rmSync(path.join(t.src, 'gone.txt'));
    fs.writeFileSync(path.join(t.src, 'added.txt'), 'added\n');
    fs.mkdirSync(path.join(t.src, 'sub', 'newdir'));
    fs.writeFileSync(path.join(t.src, 'sub', 'newdir', 'x'), 'x\n');
    fs.rmSync(path.join(t.src, 'typechg'));
    fs.mkdirSync(path.join(t.src, 'typechg'));
    fs.writeFileSync(path.join(t.src, 'typechg', 'in'), 'in\n');
    fs.rmSync(path.join(t.src, 'sub', 'deep'), { recursive: true });
    fs.writeFileSync(path.join(t.src, 'sub', 'deep'), 'a folder that became a file\n');
    fs.writeFileSync(Buffer.concat([Buffer.from(`${t.src}/sub/`), LATIN1]), 'BYTES and more\n');
    fs.writeFileSync(Buffer.concat([Buffer.from(`${t.src}/sub/new-`), LATIN1]), 'added, not UTF-8\n');
    fs.rmSync(path.join(t.src, 'link'));
    fs.symlinkSync('content.txt', path.join(t.src, 'link'));
    fs.writeFileSync(path.join(t.src, 'junk.tmp'), 'excluded by the snapshot\n');
    if (canSetXattr) expect(spawnSync('setfattr', ['-n', 'user.color', '-v', 'blue', path.join(t.src, 'attrs.txt')]).status).toBe(0);
    dirs.slice(0, 2).forEach((d, i) => touchRef(path.join(refs, `d${i}`), path.join(t.src, d)));

    const got = t.live([id, '--live']);
    expect(got.to).toBe('live');
    expect(brief(got, t.src)).toEqual([
      'added /added.txt',
      ...(canSetXattr ? ['modified /attrs.txt metadata xattrs'] : []),
      'modified /content.txt content,metadata mtime',
      'removed /gone.txt',
      'modified /link metadata mtime,target',
      'modified /meta.txt metadata mode',
      'modified /same-size.txt content',
      'modified /sub/deep type',
      'removed /sub/deep/leaf.txt',
      'modified /sub/na\xefve content,metadata mtime',
      'added /sub/new-na\xefve',
      'added /sub/newdir',
      'added /sub/newdir/x',
      'modified /typechg type',
      'added /typechg/in',
    ]);
    expect(got.summary.modified).toMatchObject({ content: 3, type: 2 });

    // The same with --read-all, and for one path (relative to the source path).
    expect(brief(t.live([id, '--live', '--read-all']), t.src)).toEqual(brief(got, t.src));
    expect(brief(t.live([id, '--live', 'sub']), t.src)).toEqual(brief(got, t.src).filter((l) => l.split(' ')[1]!.startsWith('/sub/')));
    const text = t.run(['diff', id, '--live', 'sub']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`M  ${t.src}/sub/na\\xefve  6 B -> 15 B`);
    expect(text.stdout).toContain(`T  ${t.src}/sub/deep  dir -> file`);
  });

  it('a content change the stat cannot see (a snapshot dated later than the change) is found only with --read-all', () => {
    const t = setup();
    const id = t.backup(['--time', new Date(Date.now() + 3_600_000).toISOString()]);
    const f = path.join(t.src, 'same-size.txt');
    const ref = path.join(t.dir, 'ref');
    touchRef(f, ref);
    fs.writeFileSync(f, 'abcdeF\n');
    touchRef(ref, f);
    expect(t.live([id, '--live']).changes).toEqual([]);
    const all = t.live([id, '--live', '--read-all']);
    expect(all.read_all).toBe(true);
    expect(brief(all, t.src)).toEqual(['modified /same-size.txt content']);
  });

  it.skipIf(!canSetpriv())('a folder that cannot be listed is a warning naming it, exit 3, and its entries are not reported as removed (skipped without setpriv)', () => {
    const base = scratchDir('snap-live-user-');
    fs.chmodSync(base, 0o755);
    fs.chownSync(base, 65534, 65534);
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    for (const d of [src, path.join(src, 'locked')]) {
      fs.mkdirSync(d);
      fs.chownSync(d, 65534, 65534);
    }
    for (const f of [path.join(src, 'locked', 'inside'), path.join(src, 'open')]) {
      fs.writeFileSync(f, 'x\n');
      fs.chownSync(f, 65534, 65534);
    }
    const user = { uid: 65534, gid: 65534 };
    expect(snap(['--repo', repo, 'init'], { asUser: user }).code).toBe(0);
    expect(snap(['--repo', repo, 'create', src], { asUser: user }).code).toBe(0);
    const locked = path.join(src, 'locked');
    const ref = path.join(base, 'ref');
    touchRef(locked, ref);
    fs.chmodSync(locked, 0o000);
    touchRef(ref, locked); // its mtime as recorded: only its mode changed
    const r = snap(['--repo', repo, '--json', 'diff', 'latest', '--live'], { asUser: user });
    fs.chmodSync(locked, 0o755);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain(`${locked}: cannot list directory`);
    expect(brief(parseJson<DiffJson>(r.stdout), src)).toEqual(['modified /locked metadata mode']);
  });

  it('refuses --read-all without --live, a second snapshot with --live, and one snapshot without it (exit 2)', () => {
    const t = setup();
    const id = t.backup();
    for (const args of [[id, id, '--read-all'], [id, 'sub', 'x', '--live'], [id]]) {
      const r = t.run(['diff', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/\[SNAP_USAGE\]/);
    }
    const missing = t.run(['diff', id, '--live', 'nowhere']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/\[SNAP_NOT_FOUND\]/);
  });
});
