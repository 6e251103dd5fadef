// Servers started by tests (radosgw: test/helpers/radosgw.ts) live for the whole run and are
// stopped here at its end: every daemon whose pid file is in $SNAP_SERVERS_DIR/pids is killed
// (SIGTERM, then SIGKILL), and the folder is removed. Listed before global-setup.ts, so the
// folder is made in the system's temporary folder, outside the run's TMPDIR.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export default function setup(): () => Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-servers-'));
  process.env.SNAP_SERVERS_DIR = dir;
  return async () => {
    const pidDir = path.join(dir, 'pids');
    const pids = fs.existsSync(pidDir) ? fs.readdirSync(pidDir).map((f) => Number(fs.readFileSync(path.join(pidDir, f), 'utf8'))) : [];
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
    const until = Date.now() + 10_000;
    while (pids.some(alive) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    for (const pid of pids.filter(alive)) process.kill(pid, 'SIGKILL');
    if (process.env.SNAP_KEEP_TMP) {
      console.info(`SNAP_KEEP_TMP: the servers' folder is kept: ${dir}`);
      return;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
}
