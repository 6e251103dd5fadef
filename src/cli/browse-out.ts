// Output helpers shared by the browsing commands (diff, find, history, dups, list --by): entry
// lines for people, and a stdout writer that waits for the pipe to drain so a long result streams
// with bounded memory. The JSON forms are in view/json.ts.
import { displayName, displayPath } from '../core/bytes.js';
import { shortId } from '../core/ids.js';
import type { Node } from '../model/node.js';
import type { StoredSnapshot } from '../model/snapshot.js';
import { localDateTime } from './format.js';
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

export const snapLabel = (s: StoredSnapshot): string => `${shortId(s.id)} (${localDateTime(new Date(s.time))})`;

export const owner = (n: Node): string => `${displayPath(n.user) || n.uid}/${displayPath(n.group) || n.gid}`;

/** A path for people; directories end in `/`. */
export const showPath = (p: Buffer, n?: Node): string => displayName(p) + (n?.type === 'dir' && !(p.length === 1 && p[0] === 0x2f) ? '/' : '');

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;
