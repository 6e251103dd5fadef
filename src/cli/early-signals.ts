// Ctrl-C or SIGTERM while the CLI is still loading (main.ts to program.ts: 0.2-0.6 s, the key
// derivation beside it) met no handler and ended the process at once, status 143 and no word.
// main.ts calls catchEarlySignals before it imports anything else; installInterrupts
// (interrupt.ts) takes them over and stops the command with the first one, as if it had come a
// moment later: one line, status 130. (Nothing is caught on import: a module that imports
// interrupt.ts without installing it must not swallow Ctrl-C.)
const caught: NodeJS.Signals[] = [];
const note = (sig: NodeJS.Signals): void => void caught.push(sig);
let catching = false;

/** Remember SIGINT and SIGTERM until takeEarlySignals. */
export function catchEarlySignals(): void {
  if (catching) return;
  catching = true;
  process.on('SIGINT', note);
  process.on('SIGTERM', note);
}

/** Stop remembering; the signals that came meanwhile, in order. */
export function takeEarlySignals(): NodeJS.Signals[] {
  process.off('SIGINT', note);
  process.off('SIGTERM', note);
  catching = false;
  return caught.splice(0);
}
