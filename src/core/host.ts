// Facts about the running host that records carry (hostname, user, pid) and a liveness probe
// for lock holders. Kept behind one small interface so tests can fake another host.
import * as os from 'node:os';

export interface HostInfo {
  hostname: string;
  username: string;
  pid: number;
  uid: number;
  /** Whether a process with this pid exists on this host. */
  isAlive(pid: number): boolean;
}

export function currentHost(): HostInfo {
  let username = 'unknown';
  try {
    username = os.userInfo().username;
  } catch {
    // no passwd entry (containers): keep 'unknown'
  }
  return {
    hostname: os.hostname(),
    username,
    pid: process.pid,
    uid: typeof process.getuid === 'function' ? process.getuid() : -1,
    isAlive(pid: number): boolean {
      try {
        process.kill(pid, 0);
        return true;
      } catch (e) {
        return (e as { code?: string }).code === 'EPERM';
      }
    },
  };
}
