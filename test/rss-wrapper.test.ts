// The memory tests' measure (helpers/rss-wrapper.mjs) is the CLI process's own peak RSS. getrusage's
// maxRSS of a child keeps the high-water mark of the memory it was forked with, so a test runner
// holding 400 MiB made `snap --version` "peak" at 400 MiB; the wrapper reads VmHWM instead.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI_NODE_FLAGS, ROOT, tmpDir } from './helpers/cli.js';

describe('rss-wrapper', () => {
  it("reports the CLI's own peak, not that of the process that started it", () => {
    const held = Buffer.alloc(400 * 1024 * 1024, 1); // resident in this (the runner's) process
    const rssFile = path.join(tmpDir(), 'rss');
    const r = spawnSync(process.execPath, [...CLI_NODE_FLAGS, path.join(ROOT, 'test/helpers/rss-wrapper.mjs'), '--version'], {
      env: { ...process.env, SNAP_RSS_FILE: rssFile },
    });
    expect(r.status, r.stderr.toString()).toBe(0);
    const peak = Number(fs.readFileSync(rssFile, 'utf8'));
    expect(held[held.length - 1]).toBe(1);
    expect(peak).toBeGreaterThan(10 * 1024 * 1024);
    expect(peak).toBeLessThan(200 * 1024 * 1024);
  });
});
