// `snap --version` says, besides the version, which implementation of each optional native part
// this installation uses (src/cli/version.ts): one left out at install is never lost silently.
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { availableZstd } from '../src/store/zstd.js';
import { ROOT, snap } from './helpers/cli.js';

const require = createRequire(import.meta.url);
const loads = (from: NodeJS.Require, name: string): boolean => {
  try {
    from(name);
    return true;
  } catch {
    return false;
  }
};
const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
// Nothing forced: snap picks what loads (the expected values are found here from node_modules).
const env = { SNAP_ZSTD: '', SNAP_WATCHER: '' };

describe('snap --version', () => {
  it('names the implementation of each native part this installation loads', () => {
    const r = snap(['--version'], { env });
    expect(r.code, r.stderr).toBe(0);
    const [first, second, ...rest] = r.stdout.trimEnd().split('\n');
    expect(first).toBe(version);
    expect(rest).toEqual([]);
    const zstd = availableZstd()[0]!.kind;
    const watcher = loads(require, '@parcel/watcher') ? '@parcel/watcher' : 'fs.watch';
    const xattr = loads(require, '@napi-rs/xattr') ? '@napi-rs/xattr' : 'not available (skipped with a warning)';
    const cbor = loads(createRequire(require.resolve('cbor-x')), 'cbor-extract') ? 'cbor-extract' : 'JavaScript';
    expect(second).toBe(`node ${process.version}; zstd: ${zstd}; file watcher: ${watcher}; xattrs: ${xattr}; cbor: ${cbor}`);
  });

  it('follows SNAP_ZSTD and SNAP_WATCHER (-V too)', () => {
    const r = snap(['-V'], { env: { SNAP_ZSTD: 'wasm', SNAP_WATCHER: 'fs.watch' } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('; zstd: wasm; file watcher: fs.watch; ');
  });

  it('prints only the version where it is not asked for: a command runs as before', () => {
    const r = snap(['--help'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('zstd:');
  });
});
