// `snap ui`: serve the web page for browsing, downloading from and (with --allow-restore)
// restoring from the repository (docs/ui.md). The server (ui/) opens the repository per request
// through withRepo, as every read-only command does, and closes it when idle.
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { displayPath } from '../core/bytes.js';
import { SnapError } from '../core/errors.js';
import { isLoopback } from '../ui/security.js';
import { startUiServer } from '../ui/index.js';
import { type Ctx, repoOpener, withRepo } from './context.js';

interface UiFlags {
  listen: string;
  open: boolean;
  allowRestore?: boolean;
  allowRemote?: boolean;
}

export function registerUi(program: Command, run: (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>): void {
  program
    .command('ui')
    .description('serve a web page to browse snapshots by date, download, compare and restore (docs/ui.md)')
    .option('--listen <host:port>', 'address to serve on (port 0: any free port)', '127.0.0.1:0')
    .option('--no-open', 'do not open a browser; only print the link')
    .option('--allow-restore', 'let the page restore files to this machine (read-only otherwise)')
    .option('--allow-remote', 'allow --listen on an address other than loopback (anyone who can reach it and gets the link can read the repository)')
    .action(async (o: UiFlags, cmd: Command) => run((ctx) => ui(ctx, o), cmd));
}

export function parseListen(s: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new SnapError('SNAP_USAGE', `--listen must be HOST:PORT, such as 127.0.0.1:8080 or [::1]:8080 (not '${s}')`);
  return { host: (m[1] ?? m[2])!, port };
}

function openBrowser(url: string): void {
  const cmd = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? undefined : process.env.DISPLAY || process.env.WAYLAND_DISPLAY ? 'xdg-open' : undefined;
  if (!cmd) return;
  try {
    const child = spawn(cmd, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => {});
    child.unref();
  } catch {
    // no browser to open: the printed link is enough
  }
}

async function ui(ctx: Ctx, o: UiFlags): Promise<void> {
  const { host, port } = parseListen(o.listen);
  if (!isLoopback(host) && !o.allowRemote) {
    throw new SnapError('SNAP_USAGE', `--listen ${o.listen} is not a loopback address: anyone who can reach it could try the page; add --allow-remote if that is what you want`);
  }
  const repoPath = ctx.repoPath().path;
  // Fail now, not on the first request, if there is no repository.
  await withRepo(ctx, async () => {}, 'none');
  const server = await startUiServer({
    host,
    port,
    allowRemote: o.allowRemote === true,
    allowRestore: o.allowRestore === true,
    open: repoOpener(ctx),
    repoPath: displayPath(repoPath),
    asRoot: ctx.host.uid === 0,
    now: () => ctx.clock.now(),
    log: (line) => process.stderr.write(`snap ui: ${line}\n`),
  });
  if (!isLoopback(host)) {
    process.stderr.write(`warning: serving on ${o.listen}, not only this machine: anyone who can reach it and has the link can read the repository${o.allowRestore ? ' and restore files here' : ''} (plain HTTP, not encrypted)\n`);
  }
  if (ctx.json) ctx.out(JSON.stringify({ url: server.url, origin: server.origin, repository: repoPath, allow_restore: o.allowRestore === true }));
  else {
    ctx.out(`serving ${displayPath(repoPath)} at ${server.origin} (${o.allowRestore ? 'restores allowed' : 'read-only'}); Ctrl-C stops`);
    ctx.out(`open (the link works once): ${server.url}`);
  }
  if (o.open) openBrowser(server.url);
  await new Promise<void>((resolve) => {
    if (ctx.signal.aborted) resolve();
    ctx.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await server.close();
  if (!ctx.json) process.stderr.write('snap ui: stopped\n');
}
