// Passwords of encrypted repositories (docs/security.md, "Passwords"). They come from, in this
// order: --password-file FILE, --password-command CMD, the SNAP_PASSWORD variable, or a prompt
// without echo when snap runs on a terminal. Never from an argument (other users see argv in
// `ps`), never printed, logged or put into a message.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SnapError } from '../core/errors.js';
import { DEFAULT_SCRYPT } from '../core/crypto.js';

export interface PasswordOptions {
  /** --password-file / --new-password-file */
  file?: string;
  /** --password-command / --new-password-command */
  command?: string;
}

const MAX_PASSWORD_BYTES = 4096;

/** How a password can be given, for the message when none is. */
export const PASSWORD_WAYS =
  'set SNAP_PASSWORD, give --password-file FILE or --password-command CMD, or run snap on a terminal to be asked';
const NEW_PASSWORD_WAYS = 'set SNAP_NEW_PASSWORD, give --new-password-file FILE or --new-password-command CMD, or run snap on a terminal to be asked';

/** A password file's first line (a final newline is not part of it). */
function fromFile(file: string, cwd: string, what: string): Buffer {
  let bytes: Buffer;
  try {
    const fd = fs.openSync(path.resolve(cwd, file), 'r');
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new SnapError('SNAP_NO_PASSWORD', `the ${what} file ${file} is not a regular file`);
      if (st.size > MAX_PASSWORD_BYTES) throw new SnapError('SNAP_NO_PASSWORD', `the ${what} file ${file} has ${st.size} bytes, more than a password`);
      bytes = fs.readFileSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    if (e instanceof SnapError) throw e;
    const code = (e as { code?: string }).code ?? 'an error';
    throw new SnapError('SNAP_NO_PASSWORD', `cannot read the ${what} file ${file} (${code})`);
  }
  const pw = stripNewline(bytes);
  if (pw.length === 0) throw new SnapError('SNAP_NO_PASSWORD', `the ${what} file ${file} is empty`);
  return pw;
}

function stripNewline(b: Buffer): Buffer {
  let end = b.length;
  if (end > 0 && b[end - 1] === 0x0a) end--;
  if (end > 0 && b[end - 1] === 0x0d) end--;
  return b.subarray(0, end);
}

/** Run a command (through /bin/sh, as a line in a shell); its output up to the first newline is the password. */
function fromCommand(command: string, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'inherit'] });
    const parts: Buffer[] = [];
    let size = 0;
    child.stdout.on('data', (d: Buffer) => {
      size += d.length;
      if (size <= MAX_PASSWORD_BYTES) parts.push(d);
    });
    child.on('error', (e) => reject(new SnapError('SNAP_NO_PASSWORD', `the ${what} command could not be run (${(e as { code?: string }).code ?? e.message})`)));
    child.on('close', (code, signal) => {
      const out = Buffer.concat(parts);
      if (code !== 0) {
        out.fill(0);
        reject(new SnapError('SNAP_NO_PASSWORD', `the ${what} command ${signal ? `was killed by ${signal}` : `exited with status ${code}`}; no password`));
        return;
      }
      if (size > MAX_PASSWORD_BYTES) return reject(new SnapError('SNAP_NO_PASSWORD', `the ${what} command printed more than ${MAX_PASSWORD_BYTES} bytes; not a password`));
      const nl = out.indexOf(0x0a);
      const pw = stripNewline(nl >= 0 ? out.subarray(0, nl + 1) : out);
      if (pw.length === 0) return reject(new SnapError('SNAP_NO_PASSWORD', `the ${what} command printed no password`));
      resolve(Buffer.from(pw));
      out.fill(0);
    });
  });
}

/** Ask on the terminal without echo. Only when both standard input and standard error are terminals. */
async function prompt(question: string): Promise<Buffer> {
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  const chars: number[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer): void => {
        for (const c of d) {
          if (c === 0x0d || c === 0x0a) {
            stdin.off('data', onData);
            return resolve();
          }
          if (c === 0x03) {
            stdin.off('data', onData);
            return reject(new SnapError('SNAP_INTERRUPTED', 'interrupted by SIGINT while asking for the password'));
          }
          if (c === 0x7f || c === 0x08) chars.pop();
          else chars.push(c);
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
  const pw = Buffer.from(chars);
  chars.fill(0);
  return pw;
}

function onTerminal(): boolean {
  return process.stdin.isTTY === true && process.stderr.isTTY === true;
}

function sources(o: PasswordOptions, flag: string): void {
  if (o.file !== undefined && o.command !== undefined) {
    throw new SnapError('SNAP_USAGE', `give one of ${flag}-file and ${flag}-command, not both`);
  }
}

/** The password of the repository at `shown` (asked for only when the repository is encrypted). */
export async function repositoryPassword(o: PasswordOptions, cwd: string, shown: string): Promise<Buffer> {
  sources(o, '--password');
  if (o.file !== undefined) return fromFile(o.file, cwd, 'password');
  if (o.command !== undefined) return fromCommand(o.command, 'password');
  const env = process.env.SNAP_PASSWORD;
  if (env !== undefined) {
    if (env === '') throw new SnapError('SNAP_NO_PASSWORD', `SNAP_PASSWORD is empty; the repository at ${shown} is encrypted (${PASSWORD_WAYS})`);
    return Buffer.from(env);
  }
  if (onTerminal()) {
    const pw = await prompt(`password for the repository at ${shown}: `);
    if (pw.length === 0) throw new SnapError('SNAP_NO_PASSWORD', 'no password was typed');
    return pw;
  }
  throw new SnapError('SNAP_NO_PASSWORD', `the repository at ${shown} is encrypted and no password was given: ${PASSWORD_WAYS}`);
}

/**
 * The password repositoryPassword will give, when it needs neither a terminal nor a command
 * (--password-file, SNAP_PASSWORD); undefined otherwise, or when it would fail. For a derivation
 * started before it is asked for (cli/early-key.ts): nothing is run, asked or said.
 */
export function passwordAtHand(o: PasswordOptions, cwd: string, env: Record<string, string | undefined> = process.env): Buffer | undefined {
  if (o.command !== undefined) return undefined;
  try {
    if (o.file !== undefined) return fromFile(o.file, cwd, 'password');
  } catch {
    return undefined;
  }
  const v = env.SNAP_PASSWORD;
  return v ? Buffer.from(v) : undefined;
}

/**
 * The password of `snap copy`'s source repository: --from-password-file, --from-password-command or
 * SNAP_FROM_PASSWORD when one is given (two repositories, two passwords), else the usual sources
 * (one password for both, or asked for on a terminal).
 */
export async function sourcePassword(from: PasswordOptions, usual: PasswordOptions, cwd: string, shown: string): Promise<Buffer> {
  sources(from, '--from-password');
  if (from.file !== undefined) return fromFile(from.file, cwd, 'source password');
  if (from.command !== undefined) return fromCommand(from.command, 'source password');
  const env = process.env.SNAP_FROM_PASSWORD;
  if (env !== undefined) {
    if (env === '') throw new SnapError('SNAP_NO_PASSWORD', `SNAP_FROM_PASSWORD is empty; the source repository at ${shown} is encrypted`);
    return Buffer.from(env);
  }
  return repositoryPassword(usual, cwd, shown);
}

/**
 * A password for a new key (`init --encrypt` takes it from the usual sources; `key add` and
 * `key passwd` from the --new-password-* ones and SNAP_NEW_PASSWORD). Typed on a terminal: twice.
 */
export async function newPassword(o: PasswordOptions, cwd: string, usual: boolean): Promise<Buffer> {
  const flag = usual ? '--password' : '--new-password';
  sources(o, flag);
  if (o.file !== undefined) return fromFile(o.file, cwd, usual ? 'password' : 'new password');
  if (o.command !== undefined) return fromCommand(o.command, usual ? 'password' : 'new password');
  const name = usual ? 'SNAP_PASSWORD' : 'SNAP_NEW_PASSWORD';
  const env = process.env[name];
  if (env !== undefined) {
    if (env === '') throw new SnapError('SNAP_NO_PASSWORD', `${name} is empty`);
    return Buffer.from(env);
  }
  if (onTerminal()) {
    const a = await prompt(usual ? 'password for the new repository: ' : 'new password: ');
    if (a.length === 0) throw new SnapError('SNAP_NO_PASSWORD', 'no password was typed');
    const b = await prompt('the same password again: ');
    if (!a.equals(b)) throw new SnapError('SNAP_NO_PASSWORD', 'the two passwords differ; nothing was written');
    b.fill(0);
    return a;
  }
  throw new SnapError('SNAP_NO_PASSWORD', `no password for the new key: ${usual ? PASSWORD_WAYS : NEW_PASSWORD_WAYS}`);
}

/**
 * scrypt parameters for new key files: the default (about a second here), or a cheaper N from
 * SNAP_KDF_SCRYPT_N (a power of two from 2^10; for tests and slow machines: it is recorded in the
 * key file, and a cheaper derivation makes guessing the password cheaper too).
 */
export function newKeyScrypt(): { N: number; r: number; p: number } {
  const v = process.env.SNAP_KDF_SCRYPT_N;
  if (v === undefined || v === '') return { ...DEFAULT_SCRYPT };
  const N = Number(v);
  if (!Number.isSafeInteger(N) || N < 1024 || N > 2 ** 20 || (N & (N - 1)) !== 0) {
    throw new SnapError('SNAP_USAGE', `SNAP_KDF_SCRYPT_N=${v}: not a power of two from 1024 to 1048576`);
  }
  return { ...DEFAULT_SCRYPT, N };
}
