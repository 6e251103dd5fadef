#!/usr/bin/env node
// The `snap` command's entry. Compression, LevelDB and file I/O share libuv's thread pool; 4
// threads (the default) let queued compression jobs delay index lookups, so the pool is widened
// before first use. Then the key derivation a command on an encrypted repository will ask for is
// started (early-key.ts) before the rest of the CLI (program.ts) is loaded, so that both go on at
// once.
// Only early-signals.js is imported statically: Ctrl-C or SIGTERM is kept for program.ts from
// here on, and every module else (early-key.ts's among them, 0.1-0.2 s to load) is loaded after.
import { catchEarlySignals } from './early-signals.js';

catchEarlySignals();

const { rawArgv } = await import('./argv.js');
const { deriveEarly } = await import('./early-key.js');
process.env.UV_THREADPOOL_SIZE ??= '8';
// bin/snap set MALLOC_ARENA_MAX for this process (glibc read it at start): not for its children.
if (process.env.SNAP_LAUNCHER_ARENAS === '1') {
  delete process.env.MALLOC_ARENA_MAX;
  delete process.env.SNAP_LAUNCHER_ARENAS;
}
deriveEarly(rawArgv(process.argv).slice(2));
await import('./program.js');
