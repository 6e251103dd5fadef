// Module hooks (node:module register) for cli-early-signal.test.ts: the CLI's import of
// ./program.js, which installs its signal handlers, is held for SLOW_PROGRAM_MS after saying so on
// stderr, so that a test can send a signal while the CLI is still loading.
import { writeSync } from 'node:fs';

export async function resolve(specifier, context, next) {
  if (specifier === './program.js' && context.parentURL?.endsWith('/cli/main.js')) {
    writeSync(2, 'test hook: loading program.js\n');
    await new Promise((r) => setTimeout(r, Number(process.env.SLOW_PROGRAM_MS ?? 1500)));
  }
  return next(specifier, context);
}
