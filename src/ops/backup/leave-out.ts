// What a backup leaves out below its sources: exclude patterns, files over a size, folders holding
// a tag file (--exclude-if-present, --exclude-caches). One rule for the backup's walk (create.ts)
// and the walk ahead of it (walk-ahead.ts), so that both leave out the same folders.
import * as fs from 'node:fs';
import { joinPath, fsEncode } from '../../core/bytes.js';
import { compileExcludes, type ExcludeRule, isExcluded, needsAbsolute } from '../../model/exclude.js';
import type { EntryStat } from '../fs/node-meta.js';

/** The exclude options of a backup (CreateOptions). */
export interface LeaveOutOptions {
  excludes?: string[];
  /** Leave out directories holding a CACHEDIR.TAG with the standard signature (bford.info/cachedir). */
  excludeCaches?: boolean;
  /** Leave out directories holding an entry of one of these names. */
  excludeIfPresent?: string[];
  /** Leave out files larger than this many bytes. */
  excludeLargerThan?: number;
}

const CACHEDIR_TAG = 'CACHEDIR.TAG';
const CACHEDIR_TAG_BYTES = Buffer.from(CACHEDIR_TAG);
/** The Cache Directory Tagging Specification's header: a tag file starts with exactly these bytes. */
const CACHEDIR_SIGNATURE = Buffer.from('Signature: 8a477f597d28d172789f06886806bc55');

/**
 * Where the entry `name` of a folder at `rel` below its source root is (exclude patterns match it):
 * one spelling for the backup's walk and the walk ahead, which must leave out the same entries.
 */
export function relBelow(rel: string, name: Buffer): string {
  return rel === '' ? name.toString('latin1') : `${rel}/${name.toString('latin1')}`;
}

export class LeaveOut {
  readonly rules: ExcludeRule[];
  private readonly absRules: boolean;
  private readonly tagNames: Buffer[];

  /** `counts.lstat` counts the tag files looked for. */
  constructor(private readonly o: LeaveOutOptions, private readonly counts: { lstat: number }) {
    this.rules = compileExcludes(o.excludes ?? []);
    this.absRules = needsAbsolute(this.rules);
    this.tagNames = [...new Set([...(o.excludeIfPresent ?? []), ...(o.excludeCaches ? [CACHEDIR_TAG] : [])])].map((n) => fsEncode(n));
  }

  /** Whether the entry `full` (`rel` below its source root, never the root itself) is left out. */
  excluded(full: Buffer, rel: string, st: EntryStat): boolean {
    const isDir = st.isDirectory();
    if (isExcluded(this.rules, rel, isDir, this.absRules ? full.subarray(1).toString('latin1') : undefined)) return true;
    if (this.o.excludeLargerThan !== undefined && st.isFile() && st.size > BigInt(this.o.excludeLargerThan)) return true;
    if (isDir) for (const tag of this.tagNames) if (this.hasTag(joinPath(full, tag), tag)) return true;
    return false;
  }

  /** A tag file is there (CACHEDIR.TAG only with its signature, so a stray file of that name does not hide a directory). */
  private hasTag(p: Buffer, name: Buffer): boolean {
    if (!name.equals(CACHEDIR_TAG_BYTES) || !this.o.excludeCaches) {
      this.counts.lstat++;
      try {
        fs.lstatSync(p);
        return true;
      } catch {
        return false;
      }
    }
    let fd: number | undefined;
    try {
      fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
      const head = Buffer.alloc(CACHEDIR_SIGNATURE.length);
      const n = fs.readSync(fd, head, 0, head.length, 0);
      return n === head.length && head.equals(CACHEDIR_SIGNATURE);
    } catch {
      return false;
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }
}
