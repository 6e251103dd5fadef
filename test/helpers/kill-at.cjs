// Preloaded with `node -r` (test/watch-edge.test.ts): kill -9 the process at one point of its
// first durable write into the folder SNAP_TEST_KILL_DIR (an operation-log record: the temporary
// file, its contents, fsync, link to the record's name, removal of the temporary name), named by
// SNAP_TEST_KILL_AT: `created` (the temporary file exists, empty), `written` (its contents
// written, not synced), `synced` (synced and closed, not linked), `linked` (the record is there,
// the temporary name not yet removed). The process dies by SIGKILL exactly there, as at a power cut
// or kill -9 of the real command; nothing else changes.
const fsp = require('node:fs/promises');
const path = require('node:path');
const { syncBuiltinESMExports } = require('node:module');

const dir = process.env.SNAP_TEST_KILL_DIR;
const at = process.env.SNAP_TEST_KILL_AT;
if (dir && at) {
  const inside = (p) => typeof p === 'string' && path.dirname(path.resolve(p)) === path.resolve(dir);
  const die = (point) => {
    if (point === at) process.kill(process.pid, 'SIGKILL');
  };
  const open = fsp.open;
  fsp.open = async function (p, ...rest) {
    const fh = await open.call(this, p, ...rest);
    if (!inside(p) || typeof rest[0] !== 'number' || (rest[0] & require('node:fs').constants.O_EXCL) === 0) return fh;
    die('created');
    const write = fh.write;
    fh.write = async function (...args) {
      const r = await write.apply(this, args);
      die('written');
      return r;
    };
    const close = fh.close;
    fh.close = async function (...args) {
      const r = await close.apply(this, args);
      die('synced');
      return r;
    };
    return fh;
  };
  const link = fsp.link;
  fsp.link = async function (from, to) {
    const r = await link.call(this, from, to);
    if (inside(to)) die('linked');
    return r;
  };
  syncBuiltinESMExports();
}
