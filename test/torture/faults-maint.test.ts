// Storage faults in the maintenance commands: forget, gc, check, repair and index rebuild meet an
// EIO, ENOSPC or short write on the Nth put/get/list/delete (test/helpers/fault-backend.ts). Each
// either succeeds or fails with a clear SnapError; afterwards, without any manual step, every
// remaining snapshot restores exactly, the structural check finds no damage (leftovers allowed),
// and a clean gc run then leaves no leftovers. Export under read faults gives a clear error or
// the exact archive.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { FaultBackend, type Fault, type FaultKind, type FaultOp } from '../helpers/fault-backend.js';
import { LocalBackend } from '../../src/backend/local.js';
import { Repository } from '../../src/repo/repository.js';
import { removeSnapshots } from '../../src/ops/maintain/forget.js';
import { executeGc, planGc } from '../../src/ops/maintain/gc.js';
import { checkRepository } from '../../src/ops/maintain/check.js';
import { repairRepository } from '../../src/ops/maintain/repair.js';
import { exportSnapshot } from '../../src/ops/restore/export.js';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { PassThrough } from 'node:stream';
import {
  type Manifest, Rng, cleanupTmp, cliOk, genTree, initSmallRepo, iters, manifest, mutateTree, newSeed,
  seededIt, tmpDir,
  ENC_OPEN,
} from './lib.js';
import { expectClearError, faultPositions, restoresExactly } from './repo-lib.js';
import { currentHost } from '../../src/cli/host.js';

afterAll(cleanupTmp);

const quiet = { warn: () => {}, info: () => {} };
interface Fixture {
  base: string;
  repo: string;
  src: string;
  /** Tag -> what that snapshot holds. A, B and C are three states of src. */
  want: Map<string, Manifest>;
}

async function fixture(rng: Rng): Promise<Fixture> {
  const base = tmpDir('snap-faults-maint-');
  const repo = path.join(base, 'repo');
  const src = path.join(base, 'src');
  await initSmallRepo(repo);
  genTree(rng, src, { files: 30, dirs: 4, maxFile: 300_000, symlinks: true });
  const want = new Map<string, Manifest>();
  for (const tag of ['A', 'B', 'C']) {
    if (tag !== 'A') {
      mutateTree(rng, src, 300_000);
      fs.writeFileSync(path.join(src, `only-${tag}`), rng.bytes(rng.int(50_000, 200_000)));
    }
    want.set(tag, manifest(src));
    await cliOk(['--repo', repo, 'create', '--tag', tag, src]);
  }
  return { base, repo, src, want };
}

let caseNo = 0;
function copyRepo(fx: Fixture): string {
  const dst = path.join(fx.base, `case-${caseNo++}`);
  fs.cpSync(fx.repo, dst, { recursive: true });
  return dst;
}

type Step = (r: Repository) => Promise<unknown>;

/** The maintenance operations under test, as the CLI runs them (minus locks and rendering). */
const STEPS: Record<string, Step> = {
  'forget A + gc': async (r) => {
    const a = (await r.listSnapshots()).find((s) => s.tags[0] === 'A')!;
    await removeSnapshots(r, [a.id]);
    // maxUnused 0: every partly used pack is rewritten, so gc writes as well as deletes.
    const o = { maxUnused: 0, sink: quiet, tempMarginMs: 0 };
    await executeGc(r, await planGc(r, o), o);
  },
  check: async (r) => {
    const rep = await checkRepository(r, { sink: quiet, readData: { kind: 'all' } });
    // A fault may make check report damage that is not there (a failed read); it must not throw anything else.
    return rep;
  },
  repair: async (r) => repairRepository(r, { sink: quiet, program: 'snap test', readData: true, forget: true }),
  'index rebuild': async (r) => r.rebuildIndex(),
};

/** Every listed snapshot restores to what it was made from; the structural check finds no damage. */
async function verify(repo: string, fx: Fixture, what: string): Promise<string[]> {
  const r = await Repository.open(repo, { host: currentHost(), ...ENC_OPEN, sink: quiet });
  try {
    const tags = await restoresExactly(r, fx.src, (tag) => fx.want.get(tag)!, what);
    const c = await checkRepository(r, { sink: quiet });
    expect(c.problems.map((p) => p.message), `${what}: check`).toEqual([]);
    return tags.sort();
  } finally {
    await r.close();
  }
}

async function runWithFault(fx: Fixture, step: string, fault: Fault | undefined): Promise<FaultBackend['calls']> {
  const repo = copyRepo(fx);
  const what = `${step} with ${fault ? `${fault.kind} on ${fault.op} #${fault.n}${fault.sticky ? ' (sticky)' : ''}` : 'no fault'}`;
  let fb: FaultBackend | undefined;
  let r: Repository | undefined;
  try {
    r = await Repository.open(repo, { host: currentHost(), ...ENC_OPEN, sink: quiet, lockWaitMs: 10_000, backend: (root) => (fb = new FaultBackend(new LocalBackend(root), fault)) });
    await STEPS[step]!(r);
  } catch (e) {
    expectClearError(e, `${what} (fired: ${fb?.fired.join('; ') || 'nothing'})`);
  } finally {
    await r?.close().catch(() => {});
  }
  const tags = await verify(repo, fx, `${what} (fired: ${fb?.fired.join('; ') || 'nothing'})`);
  // B and C are never removed; A is either still there or forgotten.
  expect(tags.filter((t) => t !== 'A'), what).toEqual(['B', 'C']);
  // A clean gc afterwards leaves a repository without leftovers that still restores.
  const r2 = await Repository.open(repo, { host: currentHost(), ...ENC_OPEN, sink: quiet });
  try {
    const o = { maxUnused: 0.05, sink: quiet, tempMarginMs: 0 };
    await executeGc(r2, await planGc(r2, o), o);
    const c = await checkRepository(r2, { sink: quiet, readData: { kind: 'all' } });
    expect(c.problems.map((p) => p.message), `${what}, then gc: check --read-data`).toEqual([]);
    expect(c.leftovers.map((l) => l.message), `${what}, then gc: leftovers`).toEqual([]);
  } finally {
    await r2.close();
  }
  await verify(repo, fx, `${what}, then gc`);
  fs.rmSync(repo, { recursive: true, force: true });
  return fb!.calls;
}

describe('storage faults in forget, gc, check, repair and index rebuild', () => {
  const seed = newSeed();
  let fx: Fixture;
  const counts = new Map<string, FaultBackend['calls']>();
  beforeAll(async () => {
    try {
      fx = await fixture(new Rng(seed));
      for (const step of Object.keys(STEPS)) counts.set(step, await runWithFault(fx, step, undefined));
    } catch (e) {
      console.error(`[torture] faults-maint fixture failed with seed ${seed}`);
      throw e;
    }
  }, 180_000);

  const kinds: [FaultOp, FaultKind][] = [
    ['put', 'EIO'], ['put', 'ENOSPC'], ['put', 'short'], ['get', 'EIO'], ['get', 'short'], ['list', 'EIO'], ['delete', 'EIO'],
  ];
  for (const step of Object.keys(STEPS)) {
    seededIt(`${step}: every kind of fault at the first, last and sampled calls`, async (rng) => {
      const c = counts.get(step)!;
      let ran = 0;
      for (const [op, kind] of kinds) {
        if (c[op] === 0) continue;
        for (const n of faultPositions(rng, c[op], iters(2, 8))) {
          await runWithFault(fx, step, { op, n, kind });
          ran++;
        }
      }
      expect(ran, `${step}: no faults injected`).toBeGreaterThan(0);
    });
  }

  seededIt('export: a failed read gives a clear error or the exact archive, never a wrong one', async (rng) => {
    /** Export snapshot C as tar.gz through a faulty backend; the SHA-256 of the archive, or the error. */
    const exportC = async (fault: Fault | undefined): Promise<{ hash?: string; error?: unknown; calls: FaultBackend['calls'] }> => {
      let fb: FaultBackend | undefined;
      let r: Repository | undefined;
      try {
        r = await Repository.open(fx.repo, { host: currentHost(), ...ENC_OPEN, sink: quiet, lockWaitMs: 10_000, backend: (root) => (fb = new FaultBackend(new LocalBackend(root), fault)) });
        const c = (await r.listSnapshots()).find((x) => x.tags[0] === 'C')!;
        const h = createHash('sha256');
        const out = new PassThrough();
        const hashing = pipeline(out, async function* (src: AsyncIterable<Buffer>) {
          for await (const b of src) h.update(b);
        });
        await exportSnapshot(r, c, out, { format: 'tar.gz', selection: undefined, sink: quiet });
        out.end();
        await hashing;
        return { hash: h.digest('hex'), calls: fb!.calls };
      } catch (e) {
        return { error: e, calls: fb!.calls };
      } finally {
        await r?.close();
      }
    };
    const ref = await exportC(undefined);
    expect(ref.error, 'an export without faults').toBeUndefined();
    expect(ref.calls.get, 'export reads').toBeGreaterThan(0);
    for (const kind of ['EIO', 'short'] as const) {
      for (const n of faultPositions(rng, ref.calls.get, iters(4, 20))) {
        const what = `export with ${kind} on get #${n}`;
        const res = await exportC({ op: 'get', n, kind });
        if (res.error !== undefined) expectClearError(res.error, what);
        else expect(res.hash, `${what}: an archive that completes is the exact one`).toBe(ref.hash);
      }
    }
  });

  seededIt('forget A + gc: the disk stays full from the Nth put on', async (rng) => {
    const c = counts.get('forget A + gc')!;
    expect(c.put, 'gc writes packs').toBeGreaterThan(0);
    for (const n of faultPositions(rng, c.put, iters(2, 6))) await runWithFault(fx, 'forget A + gc', { op: 'put', n, kind: 'ENOSPC', sticky: true });
  });
});
