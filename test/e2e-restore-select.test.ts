// restore --include takes the paths ls and cat take; restore --dry-run lists what it would write.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { newRepo, parseJson, snap, snapBytes, tmpDir } from './helpers/cli.js';
import { fsDecode } from '../src/core/bytes.js';

describe('restore path selection and dry-run listing', () => {
  let repo: string;
  let src: string;
  beforeAll(() => {
    repo = newRepo();
    src = path.join(tmpDir(), 'src');
    fs.mkdirSync(path.join(src, 'docs', 'deep'), { recursive: true });
    fs.writeFileSync(path.join(src, 'docs', 'deep', 'a.txt'), 'AAAA');
    fs.writeFileSync(path.join(src, 'docs', 'b.txt'), 'B');
    fs.linkSync(path.join(src, 'docs', 'b.txt'), path.join(src, 'docs', 'b-link'));
    fs.writeFileSync(path.join(src, 'top.txt'), 'top');
    fs.symlinkSync('top.txt', path.join(src, 'sym'));
    expect(snap(['--repo', repo, 'create', src]).code).toBe(0);
  });

  it('--include accepts a path relative to a backed-up path, like ls and cat', () => {
    expect(snap(['--repo', repo, 'cat', 'latest', 'docs/deep/a.txt']).stdout).toBe('AAAA');
    const t = tmpDir();
    const r = snap(['--repo', repo, 'restore', 'latest', t, '--include', 'docs/deep']);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(t, src, 'docs', 'deep', 'a.txt'), 'utf8')).toBe('AAAA');
    expect(fs.existsSync(path.join(t, src, 'docs', 'b.txt'))).toBe(false);
    expect(fs.existsSync(path.join(t, src, 'top.txt'))).toBe(false);
    const t2 = tmpDir();
    expect(snap(['--repo', repo, 'restore', 'latest', t2, '--include', './top.txt']).code).toBe(0);
    expect(fs.readFileSync(path.join(t2, src, 'top.txt'), 'utf8')).toBe('top');
    const none = snap(['--repo', repo, 'restore', 'latest', t2, '--include', 'docs/nope']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/docs\/nope is not in snapshot .*\[SNAP_NOT_FOUND\]/);
  });

  it('--dry-run lists every entry it would write, and writes nothing', () => {
    const t = path.join(tmpDir(), 'not-created');
    const r = snap(['--repo', repo, 'restore', 'latest', t, '--dry-run', '--include', 'docs']);
    expect(r.code, r.stderr).toBe(0);
    const base = path.join(t, src);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toContain(`dir      ${base}/docs/`);
    expect(lines).toContain(`file     ${base}/docs/deep/a.txt (4 B)`);
    expect(lines.filter((l) => l.startsWith('hardlink ')).length).toBe(1);
    expect(r.stdout).not.toMatch(/top\.txt/);
    expect(lines.at(-1)).toMatch(/would restore snapshot .*: 2 files/);
    expect(fs.existsSync(t)).toBe(false);
  });

  it('--dry-run --json is one document with the entries', () => {
    const t = path.join(tmpDir(), 'not-created');
    const r = snap(['--repo', repo, '--json', 'restore', 'latest', t, '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { dry_run: boolean; files: number; entries: { path: string; type: string; size: number; link_to?: string }[] };
    expect(doc.dry_run).toBe(true);
    const byPath = new Map(doc.entries.map((e) => [e.path, e]));
    expect(byPath.get(path.join(t, src, 'top.txt'))).toMatchObject({ type: 'file', size: 3 });
    expect(byPath.get(path.join(t, src, 'sym'))).toMatchObject({ type: 'symlink' });
    const link = doc.entries.find((e) => e.type === 'hardlink')!;
    expect([path.join(t, src, 'docs', 'b.txt'), path.join(t, src, 'docs', 'b-link')]).toContain(link.link_to);
    expect(doc.files).toBe(doc.entries.filter((e) => e.type === 'file').length);
    expect(fs.existsSync(t)).toBe(false);
  });
});

describe('restore --include and --dry-run with names that are not UTF-8 (issue 10, defect 4)', () => {
  it('a relative --include given as bytes; the dry run shows names escaped, and JSON exact', () => {
    const repo = newRepo();
    const src = path.join(tmpDir(), 'src');
    const dir = Buffer.concat([Buffer.from(`${src}/d`), Buffer.from([0xff])]);
    const file = Buffer.concat([dir, Buffer.from('/f'), Buffer.from([0xfe])]);
    const link = Buffer.concat([dir, Buffer.from('/l')]);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(file, 'F');
    fs.linkSync(file, link);
    fs.writeFileSync(path.join(src, 'other'), 'O');
    expect(snap(['--repo', repo, 'create', src]).code).toBe(0);

    const rel = Buffer.concat([Buffer.from('d'), Buffer.from([0xff])]);
    const t = tmpDir();
    const r = snapBytes(['--repo', repo, 'restore', 'latest', t, '--include', rel]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(Buffer.concat([Buffer.from(t), file]), 'utf8')).toBe('F');
    expect(fs.existsSync(path.join(t, src, 'other'))).toBe(false);

    const plan = path.join(tmpDir(), 'plan');
    const dry = snapBytes(['--repo', repo, 'restore', 'latest', plan, '--include', rel, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`file     ${plan}${src}/d\\xff/f\\xfe (1 B)\n`);
    expect(dry.stdout).toMatch(/^hardlink .*\/d\\xff\/(l|f\\xfe) => .*\/d\\xff\/(l|f\\xfe)$/m);

    const json = snapBytes(['--repo', repo, '--json', 'restore', 'latest', plan, '--include', rel, '--dry-run']);
    expect(json.code, json.stderr).toBe(0);
    const doc = parseJson<{ entries: { path: string; path_hex: string; type: string; link_to?: string }[] }>(json.stdout);
    const want = Buffer.concat([Buffer.from(plan), file]);
    const first = Buffer.concat([Buffer.from(plan), link]);
    const entries = doc.entries.filter((e) => e.type !== 'dir');
    expect(entries.map((e) => e.path_hex).sort()).toEqual([want.toString('hex'), first.toString('hex')].sort());
    for (const e of entries) expect([fsDecode(want), fsDecode(first)]).toContain(e.path);
    const hard = entries.find((e) => e.type === 'hardlink')!;
    expect([fsDecode(want), fsDecode(first)].filter((p) => p !== hard.path)).toEqual([hard.link_to]);
    expect(fs.existsSync(plan)).toBe(false);
  });
});
