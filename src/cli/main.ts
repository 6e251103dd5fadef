#!/usr/bin/env node
// The `snap` command's entry. Compression, LevelDB and file I/O share libuv's thread pool; 4
// threads (the default) let queued compression jobs delay index lookups, so the pool is widened
// before first use. Then the key derivation a command on an encrypted repository will ask for is
// started (early-key.ts) before the rest of the CLI (program.ts) is loaded, so that both go on at
// once; this module imports nothing else.
import { rawArgv } from './argv.js';
import { deriveEarly } from './early-key.js';

process.env.UV_THREADPOOL_SIZE ??= '8';
// bin/snap set MALLOC_ARENA_MAX for this process (glibc read it at start): not for its children.
if (process.env.SNAP_LAUNCHER_ARENAS === '1') {
  delete process.env.MALLOC_ARENA_MAX;
  delete process.env.SNAP_LAUNCHER_ARENAS;
}
deriveEarly(rawArgv(process.argv).slice(2));
await import('./program.js');
