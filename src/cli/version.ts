// The program version, read from package.json so the two never disagree, and what `snap --version`
// says besides it: which implementation of each optional native part this installation uses, so
// that one left out at install (npm 12 runs no install script of a global install; no build tools
// for zstd-napi) is never lost silently (README, "Native packages").
import { createRequire } from 'node:module';
import { cborNative } from '../model/cbor.js';
import { xattrBinding } from '../ops/fs/xattr-binding.js';
import { zstd } from '../store/zstd.js';
import { watcherKind } from './watcher.js';

const require = createRequire(import.meta.url);
export const VERSION: string = (require('../../package.json') as { version: string }).version;

/** `snap --version`: the version, then one line naming each part's implementation here. */
export function versionText(): string {
  const parts = [
    `node ${process.version}`,
    `zstd: ${zstd().kind}`,
    `file watcher: ${watcherKind()}`,
    `xattrs: ${xattrBinding() ? '@napi-rs/xattr' : 'not available (skipped with a warning)'}`,
    `cbor: ${cborNative() ? 'cbor-extract' : 'JavaScript'}`,
  ];
  return `${VERSION}\n${parts.join('; ')}`;
}
