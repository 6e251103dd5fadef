// The host facts of this process (core/host.ts's HostInfo): its pid and uid, the host and user
// names, and a liveness probe for lock holders on this host. Made here: only cli/ touches process.
import * as os from 'node:os';
import type { HostInfo } from '../core/host.js';

/** This process's host facts. */
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
