// Output helpers shared by the browsing commands (diff, find, history, dups, list --by): entry
// and snapshot JSON, entry lines for people, and a stdout writer that waits for the pipe to drain
// so a long result streams with bounded memory.
import { displayName, displayPath, fsDecode } from '../core/bytes.js';
import { shortId } from '../core/ids.js';
import type { Node } from '../model/node.js';
import type { StoredSnapshot } from '../model/snapshot.js';
import { isoLocal, localDateTime, mtimeNs } from './format.js';
import { writeOutAsync } from './interrupt.js';

/** A line to stdout, waiting while the pipe is full; stops the command when it was stopped or stdout closed. */
export async function writeLine(s: string): Promise<void> {
  await writeOutAsync(s.endsWith('\n') ? s : `${s}\n`);
}

/** Writes `head`, the items as a comma-separated JSON list, then `tail`: one JSON document, streamed. */
export class JsonList {
  private n = 0;
  constructor(private readonly head: string) {}
  async item(v: unknown): Promise<void> {
    await writeLine((this.n++ === 0 ? this.head : ',') + JSON.stringify(v));
  }
  async end(tail: string): Promise<void> {
    await writeLine((this.n === 0 ? this.head : '') + tail);
  }
}

export function snapRefJson(s: StoredSnapshot): Record<string, unknown> {
  return { id: s.id, short_id: shortId(s.id), time: isoLocal(new Date(s.time)), hostname: s.hostname, paths: s.paths, tags: s.tags };
}

export const snapLabel = (s: StoredSnapshot): string => `${shortId(s.id)} (${localDateTime(new Date(s.time))})`;

export const mtimeDate = (n: Node): Date => new Date(n.mtime.sec * 1000 + Math.floor(n.mtime.nsec / 1e6));

export const octal = (mode: number): string => mode.toString(8).padStart(4, '0');

export const owner = (n: Node): string => `${displayPath(n.user) || n.uid}/${displayPath(n.group) || n.gid}`;

/** A path for people; directories end in `/`. */
export const showPath = (p: Buffer, n?: Node): string => displayName(p) + (n?.type === 'dir' && !(p.length === 1 && p[0] === 0x2f) ? '/' : '');

export function nodeJson(n: Node): Record<string, unknown> {
  return {
    type: n.type,
    size: n.size,
    mode: octal(n.mode),
    uid: n.uid,
    gid: n.gid,
    user: n.user,
    group: n.group,
    mtime: isoLocal(mtimeDate(n)),
    mtime_ns: mtimeNs(n),
    chunks: n.chunks?.length,
    tree: n.tree?.toString('hex'),
    target: n.target ? fsDecode(n.target) : undefined,
  };
}

export const pathJson = (p: Buffer): Record<string, string> => ({ path: fsDecode(p), path_hex: p.toString('hex') });

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;
