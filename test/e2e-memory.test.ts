// Memory stays bounded whatever the file size: a 1 GiB file is backed up and restored with peak
// RSS under 300 MB (measured in the CLI process itself by test/helpers/rss-wrapper.mjs).
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { lackOfRoom } from './helpers/disk.js';
import { CLI_NODE_FLAGS, ROOT, tmpDir } from './helpers/cli.js';

const GiB = 1024 * 1024 * 1024;

function snapWithRss(args: string[]): { code: number; stderr: string; rss: number } {
  const rssFile = path.join(tmpDir(), 'rss');
  const r = spawnSync(process.execPath, [...CLI_NODE_FLAGS, path.join(ROOT, 'test/helpers/rss-wrapper.mjs'), ...args], {
    env: { ...process.env, SNAP_RSS_FILE: rssFile, SNAP_REPO: '' },
  });
  return { code: r.status ?? -1, stderr: r.stderr.toString(), rss: Number(fs.readFileSync(rssFile, 'utf8')) };
}

function sha256File(p: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(p, 'r');
  const buf = Buffer.allocUnsafe(8 * 1024 * 1024);
  for (let n = fs.readSync(fd, buf); n > 0; n = fs.readSync(fd, buf)) h.update(buf.subarray(0, n));
  fs.closeSync(fd);
  return h.digest('hex');
}

describe('memory', () => {
  it('backs up and restores a 1 GiB file with peak RSS under 300 MB', (ctx) => {
    // The file, its repository (about 0.6 GiB) and the restore, with room to spare.
    const lack = lackOfRoom(3.5 * GiB);
    if (lack) ctx.skip(lack);
    const base = tmpDir();
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    const big = path.join(src, 'big.bin');
    const fd = fs.openSync(big, 'w');
    // Half random (incompressible), half text-like (compressible): both code paths stream.
    for (let written = 0; written < GiB; written += 16 * 1024 * 1024) {
      const piece = written < GiB / 2 ? randomBytes(16 * 1024 * 1024) : Buffer.from(`line ${written} of some compressible text\n`.repeat(400_000)).subarray(0, 16 * 1024 * 1024);
      fs.writeSync(fd, piece);
    }
    fs.closeSync(fd);
    const repo = path.join(base, 'repo');
    expect(snapWithRss(['--repo', repo, 'init']).code).toBe(0);
    const c = snapWithRss(['--repo', repo, 'create', src]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.rss).toBeLessThan(300 * 1024 * 1024);
    const target = path.join(base, 'out');
    const r = snapWithRss(['--repo', repo, 'restore', 'latest', target]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.rss).toBeLessThan(300 * 1024 * 1024);
    expect(sha256File(path.join(target, big))).toBe(sha256File(big));
    fs.rmSync(base, { recursive: true, force: true });
  }, 300_000);
});
