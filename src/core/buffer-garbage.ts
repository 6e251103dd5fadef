// Buffers a thread drops faster than V8 collects them. node:crypto's ciphers return each update's
// output in an ArrayBuffer of its own (there is no "update into" in Node's API), so sealing or
// opening a GiB in 64 KiB segments leaves 16,384 such buffers behind. A worker thread allocates
// little else on its JavaScript heap, so nothing makes V8 collect its young generation but the
// growth of external memory, which it lets reach tens of MiB (up to 64) since the last collection:
// every thread that seals or opens (compression, restore writers, check) held that much of dead
// cipher outputs, 60 MiB of the encrypted restore's peak in heaptrack (docs/performance.md,
// "Cipher outputs collected as they go").
//
// freeBuffer is told of each such buffer once its holder is done with it. Where the runtime has
// `ArrayBuffer.prototype.transfer` (Node 22+), it detaches the buffer (`transfer(0)`), which frees
// its memory at once, on any thread, with no collection at all. Elsewhere (Node 20) it counts the
// bytes, and a worker thread asks for a young-generation collection (a scavenge of a small heap:
// well under a millisecond) every SCAVENGE_BYTES of them, which frees them as they go there; Node
// 24's scavenges kept many of them (performance.md, "On Node 24"), which detaching does not need.
//
// The collection is V8's own `gc({ type: 'minor' })`, reached by setting --expose-gc at run time
// and taking `gc` from a new context (the flag applies to contexts made after it). Nothing here is
// needed for correctness: where it cannot be had, the buffers are collected as before. The main
// thread is left to V8 for the scavenges: it allocates enough of its own to be scavenged every few
// MiB anyway.
import * as v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isMainThread } from 'node:worker_threads';

/** Dropped buffer bytes between two collections. */
export const SCAVENGE_BYTES = 8 * 1024 * 1024;

type Collect = (o: { type: 'minor' }) => void;
/** undefined: not looked for yet; null: not available. */
let collect: Collect | null | undefined;
let since = 0;

type Transfer = (this: ArrayBuffer, length: number) => ArrayBuffer;
const transfer = (ArrayBuffer.prototype as { transfer?: Transfer }).transfer;

/**
 * `b` (a cipher's output, say) is dropped now and nothing else holds it or any view of it: its
 * memory freed at once where the runtime can detach it, else counted toward a scavenge.
 * Only a buffer that is all of its ArrayBuffer is detached (never a slice of Node's pool). The
 * caller must be the only holder: any view of it reads as empty afterwards.
 */
export function freeBuffer(b: Uint8Array): void {
  const ab = b.buffer;
  if (transfer && b.byteOffset === 0 && ab.byteLength === b.byteLength && ab instanceof ArrayBuffer) {
    try {
      transfer.call(ab, 0);
      return;
    } catch {
      // Not detachable (an embedder's detach key): collected as before.
    }
  }
  droppedBuffers(b.byteLength);
}

/** `bytes` of buffers this thread has dropped and cannot detach: a scavenge when they add up (worker threads only). */
function droppedBuffers(bytes: number): void {
  if (isMainThread) return;
  since += bytes;
  if (since < SCAVENGE_BYTES) return;
  since = 0;
  if (collect === undefined) collect = findCollect();
  collect?.({ type: 'minor' });
}

function findCollect(): Collect | null {
  try {
    v8.setFlagsFromString('--expose-gc');
    const f: unknown = runInNewContext('gc');
    return typeof f === 'function' ? (f as Collect) : null;
  } catch {
    return null;
  }
}
