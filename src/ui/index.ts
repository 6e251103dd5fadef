// The web UI (`snap ui`): an HTTP server whose JSON API is what the CLI prints with --json, the
// page that reads it, and the guards in front of both (security.ts). Sits beside cli/: it calls
// ops, and is started by cli/cmd-ui.ts, which alone touches the process.
export { startUiServer, type UiServer, type UiServerOptions } from './server.js';
export type { RepoHandle, RepoOpener } from './lease.js';
