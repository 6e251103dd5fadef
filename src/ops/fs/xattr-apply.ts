// Setting a restored entry's extended attributes (POSIX ACLs among them) on a path. Attributes
// are only added: an existing directory keeps attributes the snapshot does not name. Each
// attribute that cannot be set is returned as a problem (the caller warns): a file system
// without xattr support, a namespace only root may write (trusted.*, security.*), a name the
// binding cannot pass.
import type { Xattr } from '../../model/node.js';
import { type XattrBinding, withXattrPath, xattrErrno } from './xattr-binding.js';
import { nameIsText, type XattrProblem } from './xattr-read.js';

const WHY: Record<string, string> = {
  ENOTSUP: 'the target file system cannot store it',
  EOPNOTSUPP: 'the target file system cannot store it',
  EPERM: 'not permitted (trusted.* and most security.* attributes need root; symlinks take no user.* attributes)',
  EACCES: 'permission denied',
  ENOSPC: 'no space for attributes on the target file system',
  E2BIG: 'too large for the target file system',
  ERANGE: 'too large for the target file system',
};

/**
 * Set each attribute on `p` (a final symlink is not followed). `p` is a real path, or a
 * `/proc/self/fd/N/name` path through an open parent directory; never a bare `/proc/self/fd/N`
 * (see xattr-binding.ts).
 */
export function applyXattrs(b: XattrBinding, p: Buffer | string, xattrs: readonly Xattr[]): XattrProblem[] {
  const problems: XattrProblem[] = [];
  const done = withXattrPath(p, (sp) => {
    for (const x of xattrs) {
      const name = x.name.toString('utf8');
      if (!nameIsText(x.name)) {
        problems.push({ code: 'SNAP_XATTR', message: `extended attribute ${JSON.stringify(name)} not restored: its name is not UTF-8, which the xattr binding cannot pass` });
        continue;
      }
      try {
        b.setAttributeSync(sp, name, x.value);
      } catch (e) {
        const code = xattrErrno(e);
        problems.push({ code, message: `extended attribute ${name} not restored: ${WHY[code] ?? (e as Error).message}` });
      }
    }
    return true;
  });
  if (!done) problems.push({ code: 'SNAP_XATTR', message: `${xattrs.length} extended attribute(s) not restored: the xattr binding cannot name a file whose name is not UTF-8` });
  return problems;
}
