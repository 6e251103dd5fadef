// A helper program of `snap mount` as a user (mount/fuse.ts, docs/mount.md): it runs for a moment
// between snap and fusermount3, on the socket snap opened as an IPC channel (fd 3 here).
//
// fusermount3 mounts and hands the /dev/fuse descriptor back over that socket (SCM_RIGHTS). Node
// receives descriptors on IPC channels, but one that is neither a socket nor a pipe (the FUSE
// device) ends the receiving process with an assertion, unless a descriptor of a kind Node does
// not recognise is already waiting there: then both stay open, unclaimed, and snap finds the FUSE
// device in /proc/self/fd. This program sends such a descriptor first (a directory), puts the
// socket back in blocking mode (fusermount3 reads it to learn when snap ends, and gives up on
// EAGAIN) and exits; the shell that ran it then runs fusermount3 on the same socket.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

/** The channel's descriptor: snap opens it as the fourth stdio slot. */
const CHANNEL = 3;

interface PipeBinding {
  Pipe: new (type: number) => { open(fd: number): number };
  constants: { SOCKET: number };
}

function fail(why: string): never {
  process.stderr.write(`snap mount (fuse-guard): ${why}\n`);
  process.exit(1);
}

if (!process.send) fail('started without an IPC channel');
// A stream handle over a directory: Node sends any stream handle's descriptor; the receiver's
// libuv classifies a directory as unknown and leaves it (and all that follow) unclaimed.
const { Pipe, constants } = (process as unknown as { binding(name: string): PipeBinding }).binding('pipe_wrap');
const dir = new Pipe(constants.SOCKET);
const opened = dir.open(fs.openSync('/', 'r'));
if (opened !== 0) fail(`cannot wrap a directory descriptor (${opened})`);
process.send('snap-mount: fuse guard', dir as never, (e: Error | null) => {
  if (e) fail(`sending on the channel: ${e.message}`);
  // Node made the socket non-blocking; libuv makes a child's standard input blocking before it
  // starts the child, and the flag belongs to the socket, shared by every process holding it.
  const r = spawnSync('true', { stdio: [CHANNEL, 'ignore', 'ignore'] });
  if (r.status !== 0) fail(`cannot run true(1): ${r.error?.message ?? `exit status ${r.status}`}`);
  process.exit(0);
});
