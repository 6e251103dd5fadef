// The optional native binding for extended attributes, @napi-rs/xattr (prebuilt for Linux, macOS
// and FreeBSD; chosen and measured in docs/design.md, "Extended attributes"). It is an optional
// dependency, loaded on first use: a machine without it backs up and restores everything else,
// and says once that extended attributes are left out.
//
// Its calls do not follow a final symlink (l*xattr). It takes paths as text, so a path that is
// not UTF-8 is reached through an open parent directory (`/proc/self/fd/N/name`, see
// xattrPath); a final name that is not UTF-8 cannot be named at all. A path to a bare
// `/proc/self/fd/N` reaches the magic link itself, not the file (listing it gives nothing), so
// callers must never pass one.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { createRequire } from 'node:module';
import { isUtf8 } from 'node:buffer';

export interface XattrBinding {
  listAttributesSync(path: string): string[];
  /** null when the attribute is missing or cannot be read (the binding does not say which). */
  getAttributeSync(path: string, name: string): Buffer | null;
  setAttributeSync(path: string, name: string, value: Uint8Array): void;
}

export const XATTR_PACKAGE = '@napi-rs/xattr';

let binding: XattrBinding | null | undefined;
let whyNot = '';

/** The binding, or undefined when it is not installed or does not load here (see xattrUnavailable). */
export function xattrBinding(): XattrBinding | undefined {
  if (binding === undefined) {
    try {
      binding = createRequire(import.meta.url)(XATTR_PACKAGE) as XattrBinding;
    } catch (e) {
      binding = null;
      whyNot = e instanceof Error ? e.message.split('\n')[0]! : String(e);
    }
  }
  return binding ?? undefined;
}

/** Why the binding is missing, for the one warning that says so. */
export function xattrUnavailable(): string {
  return `the optional package ${XATTR_PACKAGE} is not installed or does not load here (${whyNot}); run 'npm install ${XATTR_PACKAGE}'`;
}

const ERRNO_NAMES = new Map(Object.entries(os.constants.errno).map(([k, v]) => [v, k]));

/** The errno name of a binding error: it throws `Error("… (os error 95)")` with no `code` of its own. */
export function xattrErrno(e: unknown): string {
  const m = /\(os error (\d+)\)/.exec(e instanceof Error ? e.message : String(e));
  return (m && ERRNO_NAMES.get(Number(m[1]))) || 'EIO';
}

/**
 * Run `fn` with a text path that names `p` for the binding: `p` itself when it is UTF-8,
 * otherwise `/proc/self/fd/N/<name>` with N an open descriptor of the parent directory. Returns
 * undefined, without calling `fn`, when the final name is not UTF-8.
 */
export function withXattrPath<T>(p: Buffer | string, fn: (path: string) => T): T | undefined {
  if (typeof p === 'string') return fn(p);
  if (isUtf8(p)) return fn(p.toString('utf8'));
  const slash = p.lastIndexOf(0x2f);
  const name = p.subarray(slash + 1);
  if (slash < 0 || name.length === 0 || !isUtf8(name)) return undefined;
  const fd = fs.openSync(slash === 0 ? Buffer.from('/') : p.subarray(0, slash), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    return fn(`/proc/self/fd/${fd}/${name.toString('utf8')}`);
  } finally {
    fs.closeSync(fd);
  }
}
