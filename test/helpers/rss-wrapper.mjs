// Runs the CLI in this process and records its peak RSS (bytes) in $SNAP_RSS_FILE at exit.
import * as fs from 'node:fs';
import * as path from 'node:path';

process.on('exit', () => {
  fs.writeFileSync(process.env.SNAP_RSS_FILE, String(process.resourceUsage().maxRSS * 1024));
});
await import(path.resolve(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js'));
