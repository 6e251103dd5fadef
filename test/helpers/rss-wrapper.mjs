// Runs the CLI in this process and records its peak RSS (bytes) in $SNAP_RSS_FILE at exit: the
// CLI of $SNAP_RSS_CLI (a private copy), else the checkout's dist/cli/main.js.
// VmHWM of /proc/self/status, not getrusage's maxRSS: a child's ru_maxrss keeps the high-water mark
// of the memory it was forked with (the kernel carries it over execve), so a test runner holding
// 400 MiB made every child it started "peak" at 400 MiB.
import * as fs from 'node:fs';
import * as path from 'node:path';

process.on('exit', () => {
  const kib = Number(/^VmHWM:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
  fs.writeFileSync(process.env.SNAP_RSS_FILE, String(kib * 1024));
});
await import(process.env.SNAP_RSS_CLI || path.resolve(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js'));
