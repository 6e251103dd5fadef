// Foreign repositories (issue 20; git refuses a repository owned by someone else since
// CVE-2022-24765, for the same reason). Whoever owns a repository folder controls what snap reads
// there and, through symlinks planted in its index folder, where LevelDB writes: `snap list` run by
// root on a repository owned by `nobody`, whose index held a symlink named like LevelDB's next
// MANIFEST file, overwrote the file the symlink named. So snap opens a local repository only when
// the user running it owns the folder and its index, or names it as trusted; and never an index
// that is, or holds, a symlink, whoever owns it.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { SnapError, errnoCode, fromSystemError } from '../core/errors.js';
import { displayPath, fsPath } from '../core/bytes.js';

export interface OwnerPolicy {
  /** The effective user id snap runs as. */
  uid: number;
  /** `--trust-owner`: open whoever owns the repository. */
  trustAny?: boolean;
  /** Folders named trusted (SNAP_TRUSTED_REPOS), absolute. */
  trusted?: string[];
}

/** Whether `root` is one of the trusted folders (compared as resolved paths, and by their real paths). */
async function isTrusted(root: string, p: OwnerPolicy): Promise<boolean> {
  if (p.trustAny) return true;
  if (!p.trusted || p.trusted.length === 0) return false;
  const real = await fsp.realpath(fsPath(root)).then(String, () => root);
  for (const t of p.trusted) {
    if (t === '*') return true;
    const rt = await fsp.realpath(fsPath(t)).then(String, () => t);
    if (path.resolve(t) === root || rt === real) return true;
  }
  return false;
}

function uidName(uid: number): string {
  return uid === 0 ? 'root' : `uid ${uid}`;
}

function foreign(what: string, shown: string, owner: number, p: OwnerPolicy): SnapError {
  return new SnapError(
    'SNAP_FOREIGN_REPO',
    `${what} ${shown} belongs to ${uidName(owner)}, not to ${uidName(p.uid)} who runs snap: that user could make snap read crafted data or write ` +
      `through planted symlinks. If you trust them, pass --trust-owner or add the folder to SNAP_TRUSTED_REPOS; otherwise run snap as the repository's owner`,
  );
}

/**
 * Refuse (SNAP_FOREIGN_REPO) a repository folder or index folder owned by another user unless it
 * is trusted, and an index folder that is a symlink or holds one (LevelDB never makes symlinks)
 * whatever the trust. Called before the config is read and before LevelDB opens anything.
 */
export async function checkRepositoryOwner(root: string, indexDir: string, p: OwnerPolicy): Promise<void> {
  const shown = displayPath(root);
  const st = await fsp.stat(fsPath(root)).catch((e: unknown) => {
    throw fromSystemError(e, `reading the repository at ${shown}`);
  });
  const trusted = st.uid === p.uid || (await isTrusted(root, p));
  if (!trusted) throw foreign('the repository at', shown, st.uid, p);
  let ist;
  try {
    ist = await fsp.lstat(fsPath(indexDir));
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return; // made by this user when opened
    throw fromSystemError(e, `reading the repository index at ${displayPath(indexDir)}`);
  }
  if (ist.isSymbolicLink() || !ist.isDirectory()) {
    throw new SnapError('SNAP_FOREIGN_REPO', `the repository index ${displayPath(indexDir)} is ${ist.isSymbolicLink() ? 'a symbolic link' : 'not a folder'}; snap writes its index only into a real folder (remove it: the index is rebuilt from the repository)`);
  }
  if (ist.uid !== p.uid && !(await isTrusted(root, p))) throw foreign('the index folder', displayPath(indexDir), ist.uid, p);
  let names: string[];
  try {
    names = await fsp.readdir(fsPath(indexDir));
  } catch (e) {
    throw fromSystemError(e, `reading the repository index at ${displayPath(indexDir)}`);
  }
  for (const name of names) {
    const est = await fsp.lstat(fsPath(path.join(indexDir, name))).catch(() => undefined);
    if (est?.isSymbolicLink()) {
      throw new SnapError(
        'SNAP_FOREIGN_REPO',
        `the repository index ${displayPath(indexDir)} holds a symbolic link, ${displayPath(name)}, which LevelDB never makes: someone planted it to redirect snap's writes. ` +
          'Nothing was written; remove the index folder (it is rebuilt from the repository) after finding out who made it',
      );
    }
  }
}
