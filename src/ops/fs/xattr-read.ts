// Reading a file's extended attributes for its tree node (backup). Problems are returned, not
// thrown: the caller warns and backs up everything else about the file.
import { isUtf8 } from 'node:buffer';
import type { Xattr } from '../../model/node.js';
import { type XattrBinding, withXattrPath, xattrErrno } from './xattr-binding.js';

export interface XattrProblem {
  /** An errno name (ENOTSUP, EPERM, ...) or SNAP_XATTR. */
  code: string;
  message: string;
}

export interface XattrRead {
  /** Sorted by name bytes; empty when the file has none. */
  xattrs: Xattr[];
  problems: XattrProblem[];
}

const NONE: XattrRead = { xattrs: [], problems: [] };

/**
 * The extended attributes of `p` (a final symlink is not followed), or undefined when the
 * binding cannot name it (its final name is not UTF-8): whether it has any is then unknown.
 */
export function readXattrs(b: XattrBinding, p: Buffer | string): XattrRead | undefined {
  return withXattrPath(p, (sp) => readAt(b, sp));
}

function readAt(b: XattrBinding, sp: string): XattrRead {
  let names: string[];
  try {
    names = b.listAttributesSync(sp);
  } catch (e) {
    const code = xattrErrno(e);
    // A file system without extended attributes (some FUSE, /proc): the file has none.
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return NONE;
    return { xattrs: [], problems: [{ code, message: `cannot list extended attributes: ${(e as Error).message}` }] };
  }
  if (names.length === 0) return NONE;
  const xattrs: Xattr[] = [];
  const problems: XattrProblem[] = [];
  for (const name of names) {
    const value = b.getAttributeSync(sp, name);
    // null: removed since the listing, or unreadable (the binding does not tell which).
    if (value === null) problems.push({ code: 'SNAP_XATTR', message: `extended attribute ${name} could not be read; not backed up` });
    else xattrs.push({ name: Buffer.from(name, 'utf8'), value: Buffer.from(value) });
  }
  xattrs.sort((x, y) => Buffer.compare(x.name, y.name));
  return { xattrs, problems };
}

/** Whether a recorded attribute name can be handed to the binding (which takes text). */
export function nameIsText(name: Buffer): boolean {
  return isUtf8(name);
}
