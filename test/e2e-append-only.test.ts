// Append-only use (ransomware resistance): backups, listing, checking and restoring work; every
// command that would delete refuses with SNAP_APPEND_ONLY before changing anything.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { newRepo, snap, tmpDir } from './helpers/cli.js';
import { AppendOnlyBackend } from '../src/backend/append-only.js';
import { LocalBackend } from '../src/backend/local.js';
import { isSnapError } from '../src/core/errors.js';

/** The repository's blobs (not the local index, not locks, not the operation log) with their bytes. */
function blobs(repo: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of fs.readdirSync(repo, { withFileTypes: true, recursive: true })) {
    const rel = path.relative(repo, path.join(e.parentPath, e.name));
    if (e.isFile() && !rel.startsWith('index') && !rel.startsWith('locks') && !rel.startsWith('log')) out.set(rel, fs.readFileSync(path.join(repo, rel)).toString('hex'));
  }
  return out;
}

describe('append-only use', () => {
  let repo: string;
  let src: string;
  const ao = (args: string[], env = false) => (env ? snap(['--repo', repo, ...args], { env: { SNAP_APPEND_ONLY: '1' } }) : snap(['--repo', repo, '--append-only', ...args]));
  beforeAll(() => {
    repo = newRepo();
    src = path.join(tmpDir(), 'src');
    fs.mkdirSync(path.join(src, 'd'), { recursive: true });
    fs.writeFileSync(path.join(src, 'd', 'f'), 'first');
  });

  it('create, list, check, restore, and rewrite without --forget work', () => {
    expect(ao(['create', src]).code).toBe(0);
    fs.writeFileSync(path.join(src, 'd', 'f'), 'second');
    expect(ao(['create', src], true).code).toBe(0);
    expect(JSON.parse(ao(['--json', 'list']).stdout)).toHaveLength(2);
    expect(ao(['check', '--read-data']).code).toBe(0);
    const t = tmpDir();
    expect(ao(['restore', 'latest', t]).code).toBe(0);
    expect(fs.readFileSync(path.join(t, src, 'd', 'f'), 'utf8')).toBe('second');
    const rw = ao(['rewrite', 'latest', '--exclude', 'd/f']);
    expect(rw.code, rw.stderr).toBe(0);
    expect(JSON.parse(ao(['--json', 'list']).stdout)).toHaveLength(3);
    expect(ao(['forget', 'latest', '--dry-run']).code).toBe(0);
    expect(ao(['gc', '--dry-run']).code).toBe(0);
  });

  it('forget, gc, repair, repair --forget, rewrite --forget and tag refuse, and change nothing', () => {
    const before = blobs(repo);
    for (const [args, env] of [
      [['forget', 'latest'], false],
      [['forget', '--keep-last', '1'], true],
      [['gc'], false],
      [['gc', '--max-unused', '0%'], true],
      [['repair'], false],
      [['repair', '--forget'], true],
      [['rewrite', 'latest', '--exclude', 'd', '--forget'], false],
      [['tag', 'latest', '--add', 'x'], true],
    ] as const) {
      const r = ao([...args], env);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(1);
      expect(r.stderr).toMatch(/is used append-only .* is refused; run it where deleting is allowed \[SNAP_APPEND_ONLY\]/);
    }
    expect(blobs(repo)).toEqual(before);
    // Each refusal is in the operation log (new records are all append-only storage accepts).
    const logged = (JSON.parse(snap(['--repo', repo, '--json', 'log']).stdout) as { command: string; error?: { code: string } }[]).slice(-8);
    expect(logged.map((l) => [l.command, l.error?.code])).toEqual(['forget', 'forget', 'gc', 'gc', 'repair', 'repair', 'rewrite', 'tag'].map((c) => [c, 'SNAP_APPEND_ONLY']));
    // Without the mode, the same repository is maintained as usual.
    expect(snap(['--repo', repo, 'forget', '--keep-last', '1']).code).toBe(0);
    expect(snap(['--repo', repo, 'gc']).code).toBe(0);
    expect(JSON.parse(snap(['--repo', repo, '--json', 'list']).stdout)).toHaveLength(1);
  });

  it('the storage wrapper deletes and replaces nothing but lock files', async () => {
    const root = tmpDir();
    const b = new AppendOnlyBackend(new LocalBackend(root));
    await b.put('snapshots/x', Buffer.from('one'));
    await b.put('snapshots/x', Buffer.from('two')); // kept: the name stands for its content
    expect((await b.get('snapshots/x')).toString()).toBe('one');
    await expect(b.delete('snapshots/x')).rejects.toSatisfy((e) => isSnapError(e, 'SNAP_APPEND_ONLY'));
    await expect(b.delete('data/ab/abcd')).rejects.toSatisfy((e) => isSnapError(e, 'SNAP_APPEND_ONLY'));
    await b.put('locks/l', Buffer.from('1'));
    await b.put('locks/l', Buffer.from('2'));
    expect((await b.get('locks/l')).toString()).toBe('2');
    await b.delete('locks/l');
    expect(await b.exists('locks/l')).toBe(false);
    await b.close();
  });
});
