// Standard output of long listings (cli/interrupt.ts writeOutAsync): writers that find the pipe full
// at the same time wait together, so no command warns of a listener leak (Node's
// MaxListenersExceededWarning went to stderr when a dry run's entries were planned concurrently),
// and a reader that goes away ends every one of them with the closed-output error.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/cli.js';

const MODULE = path.join(ROOT, 'dist', 'cli', 'interrupt.js');

/** Run `body` in a child whose stdout is a pipe nobody reads until `after` ms (then read, or closed unread); gives stdout bytes, stderr and the code. */
function child(body: string, o: { after: number; close?: boolean }): Promise<{ out: number; err: string; code: number | null }> {
  // As the CLI runs: its interrupts installed (a closed stdout aborts the command's signal).
  const script = `import { installInterrupts, writeOutAsync } from ${JSON.stringify(MODULE)};\ninstallInterrupts(() => process.exit(130));\n${body}`;
  const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = 0;
  let err = '';
  c.stderr.on('data', (d: Buffer) => (err += d.toString()));
  c.stdout.pause();
  setTimeout(() => {
    if (o.close) return void c.stdout.destroy();
    c.stdout.on('data', (d: Buffer) => (out += d.length));
    c.stdout.resume();
  }, o.after);
  return new Promise((resolve) => c.on('close', (code) => resolve({ out, err, code })));
}

describe('writeOutAsync', () => {
  it('50 writers waiting on a full pipe at once: all written, no warning', async () => {
    const r = await child(
      `const line = 'x'.repeat(4095) + '\\n';
       const all = [];
       for (let i = 0; i < 50; i++) all.push(writeOutAsync(line.repeat(8)));
       await Promise.all(all);
       for (let i = 0; i < 50; i++) all.push(writeOutAsync(line));
       await Promise.all(all);`,
      { after: 300 },
    );
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toBe(50 * 8 * 4096 + 50 * 4096);
  });

  it('the reader gone: every waiting writer gets the closed-output error', async () => {
    const r = await child(
      `const line = 'y'.repeat(65536);
       const all = [];
       for (let i = 0; i < 30; i++) all.push(writeOutAsync(line).then(() => 'ok', (e) => e.constructor.name));
       const got = await Promise.all(all);
       process.stderr.write(JSON.stringify({ kinds: [...new Set(got)].sort(), last: got.at(-1) }));`,
      { after: 200, close: true },
    );
    // The pipe held the first writes whole ('ok'); the rest end with the error, none hangs.
    const got = JSON.parse(r.err) as { kinds: string[]; last: string };
    expect(got.last).toBe('OutputClosed');
    expect(got.kinds.filter((k) => k !== 'ok')).toEqual(['OutputClosed']);
  });
});
