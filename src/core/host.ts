// Facts about the running host that records carry (hostname, user, pid) and a liveness probe
// for lock holders. Kept behind one small interface so tests can fake another host; the CLI
// makes the real one (cli/host.ts), as it alone touches the process.
export interface HostInfo {
  hostname: string;
  username: string;
  pid: number;
  uid: number;
  /** Whether a process with this pid exists on this host. */
  isAlive(pid: number): boolean;
}
