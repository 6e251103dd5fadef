// `node --import ./module-log.mjs`: appends the URL of every module the process loads (ES modules
// and those loaded through import) to the file SNAP_TEST_MODULE_LOG names, one per line. Used by
// test/cli-commands.test.ts to see which modules a command loads.
import { register } from 'node:module';

register(
  'data:text/javascript,' +
    encodeURIComponent(`
import { appendFileSync } from 'node:fs';
const log = process.env.SNAP_TEST_MODULE_LOG;
export async function load(url, context, next) {
  const r = await next(url, context);
  if (log) appendFileSync(log, url + '\\n');
  return r;
}
`),
);
