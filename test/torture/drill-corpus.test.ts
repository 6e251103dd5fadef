// Issue 21: a `--full` drill of the benchmark corpus (about 1 GiB: ~48k small files and three
// large ones, built by ../shared/bench-kit/make-dataset.sh) restores and verifies everything,
// also compared with the source. Long, so only with SNAP_TORTURE (npm run test:torture); skipped,
// saying so, where the bench kit is not beside the project.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LONG, ROOT, cleanupTmp, cliOk, tmpDir } from './lib.js';

const KIT = process.env.SNAP_BENCH_KIT ?? path.resolve(ROOT, '..', 'shared', 'bench-kit');
const MAKE = path.join(KIT, 'make-dataset.sh');
const hasKit = fs.existsSync(MAKE);
if (LONG && !hasKit) console.warn(`drill-corpus.test.ts: skipped: no bench kit at ${KIT} (set SNAP_BENCH_KIT)`);

describe.skipIf(!LONG || !hasKit)('a full drill of the benchmark corpus', () => {
  afterAll(cleanupTmp);

  it('restores and verifies every file, and every file equals its source', async () => {
    const dir = tmpDir('snap-drill-corpus-');
    // A corpus the benchmark built already is reused (SNAP_BENCH_CORPUS); otherwise one is made.
    let corpus = process.env.SNAP_BENCH_CORPUS ?? '';
    if (!corpus) {
      corpus = path.join(dir, 'corpus');
      const made = spawnSync(MAKE, [corpus, '64'], { stdio: ['ignore', 'ignore', 'pipe'] });
      expect(made.status, made.stderr?.toString()).toBe(0);
    }
    const files = fs.readFileSync(path.join(corpus, 'MANIFEST.sha256'), 'utf8').split('\n').filter((l) => l !== '').length;
    expect(files).toBeGreaterThan(1000);
    const repo = path.join(dir, 'repo');
    const env = { XDG_CACHE_HOME: path.join(dir, 'cache') };
    await cliOk(['--repo', repo, 'init'], { env });
    await cliOk(['--repo', repo, 'create', path.join(corpus, 'src'), path.join(corpus, 'big')], { env, timeoutMs: 1_800_000 });
    const r = await cliOk(['--repo', repo, '--json', 'drill', '--full', '--against-source'], { env, timeoutMs: 1_800_000 });
    const report = JSON.parse(r.stdout) as { ok: boolean; files_in_snapshot: number; files_verified: number; failed_count: number; source: { compared: number; skipped_count: number } };
    expect(report.ok).toBe(true);
    expect(report.failed_count).toBe(0);
    // The manifest lists every file of src/ and big/.
    expect(report.files_verified).toBe(files);
    expect(report.files_in_snapshot).toBe(files);
    expect(report.source.compared).toBe(files);
    expect(report.source.skipped_count).toBe(0);
  }, 3_600_000);
});
