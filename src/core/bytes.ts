// Paths are bytes: Linux file names and command-line arguments need not be UTF-8.
//
// Two text forms of path bytes:
// - fsDecode/fsEncode: lossless. Valid UTF-8 decodes as usual; each byte of an invalid sequence
//   becomes the lone surrogate U+DC80 + (byte - 0x80), as Python's "surrogateescape" does. Valid
//   UTF-8 never decodes to a lone surrogate, so the mapping is exact both ways, and paths can be
//   handled as strings (joined, compared, split at '/') until they meet the file system or a tree,
//   where fsEncode gives the bytes back. Never pass such a string to an fs call or Buffer.from.
//   JSON output carries these strings as they are: JSON.stringify writes a lone surrogate as
//   `\udcNN`, which Python's `encode('utf-8', 'surrogateescape')` turns back into the byte.
// - displayName: for people. One line, unambiguous, no terminal control: a byte that is not part
//   of valid UTF-8, a control character and a character that reorders or breaks lines are written
//   as `\xNN` per byte (`\n`, `\t`, `\r` for those three), and a backslash as `\\`, so a name can
//   neither fake a line of output nor look like another name.

/** Length of the valid UTF-8 sequence at `i`, or 0 when the byte there starts none (RFC 3629). */
function seqLength(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean => i + k < b.length && b[i + k]! >= lo && b[i + k]! <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const [lo, hi] = c === 0xe0 ? [0xa0, 0xbf] : c === 0xed ? [0x80, 0x9f] : [0x80, 0xbf];
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const [lo, hi] = c === 0xf0 ? [0x90, 0xbf] : c === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** Whether the bytes are valid UTF-8. */
export function isUtf8(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; ) {
    const n = seqLength(b, i);
    if (n === 0) return false;
    i += n;
  }
  return true;
}

/** Path bytes as a lossless string (see above). */
export function fsDecode(b: Uint8Array): string {
  const buf = asBuffer(b);
  const s = buf.toString('utf8');
  if (!s.includes('\uFFFD')) return s; // valid (the decoder replaces every invalid sequence)
  let out = '';
  for (let i = 0; i < buf.length; ) {
    const n = seqLength(buf, i);
    if (n === 0) {
      out += String.fromCharCode(0xdc00 + buf[i]!);
      i++;
    } else {
      out += buf.toString('utf8', i, i + n);
      i += n;
    }
  }
  return out;
}

/** Whether a string holds escaped bytes, that is, was decoded from bytes that are not UTF-8. */
export function hasEscapedBytes(s: string): boolean {
  return /[\uDC80-\uDCFF]/.test(s) && fsEncode(s).toString('utf8') !== s;
}

/** The bytes of a string made by fsDecode (any other string: its UTF-8). */
export function fsEncode(s: string): Buffer {
  if (!/[\uD800-\uDFFF]/.test(s)) return Buffer.from(s, 'utf8');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++; // a surrogate pair: an ordinary character, encoded with its run
        continue;
      }
    }
    if (c >= 0xdc80 && c <= 0xdcff) {
      parts.push(Buffer.from(s.slice(start, i), 'utf8'), Buffer.from([c - 0xdc00]));
      start = i + 1;
    }
  }
  parts.push(Buffer.from(s.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

const hex = (n: number): string => `\\x${n.toString(16).padStart(2, '0')}`;
const SHORT: Record<number, string> = { 0x09: '\\t', 0x0a: '\\n', 0x0d: '\\r', 0x5c: '\\\\' };

/** Characters written as escapes though valid: C1 controls, line and paragraph separators, bidi controls. */
function unsafeChar(cp: number): boolean {
  return (cp >= 0x80 && cp <= 0x9f) || cp === 0x2028 || cp === 0x2029 || (cp >= 0x200e && cp <= 0x200f) || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/** Path bytes for people: one line, unambiguous (see above). */
export function displayName(b: Uint8Array): string {
  const buf = asBuffer(b);
  let out = '';
  let plain = 0; // start of the run of bytes that print as they are
  for (let i = 0; i < buf.length; ) {
    const c = buf[i]!;
    if (c >= 0x20 && c < 0x7f && c !== 0x5c) {
      i++;
      continue;
    }
    const n = seqLength(buf, i);
    if (n > 1 && !unsafeChar(buf.toString('utf8', i, i + n).codePointAt(0)!)) {
      i += n;
      continue;
    }
    out += buf.toString('utf8', plain, i);
    const len = Math.max(n, 1);
    for (let k = i; k < i + len; k++) out += SHORT[buf[k]!] ?? hex(buf[k]!);
    i += len;
    plain = i;
  }
  return out + buf.toString('utf8', plain);
}

/** A path string (from fsDecode, or typed by a user) for people, as displayName shows its bytes. */
export function displayPath(s: string): string {
  return displayName(fsEncode(s));
}

export function joinPath(dir: Buffer, name: Buffer): Buffer {
  if (dir.length === 1 && dir[0] === 0x2f) return Buffer.concat([dir, name]);
  return Buffer.concat([dir, Buffer.from('/'), name]);
}

/**
 * Buffers copied back to back into one, returned as views of it: a Buffer of its own is about
 * 300 bytes of heap and native memory beside its bytes, a view about 100 (a directory's names,
 * kept until its tree is made).
 */
export function packedViews(parts: Buffer[]): Buffer[] {
  const all = Buffer.concat(parts);
  let at = 0;
  return parts.map((p) => all.subarray(at, (at += p.length)));
}

export function isAllZero(b: Uint8Array): boolean {
  // Compare in 64 KiB steps against a shared zero buffer: memcmp speed, no per-byte JS loop.
  for (let off = 0; off < b.length; off += ZERO.length) {
    const n = Math.min(ZERO.length, b.length - off);
    if (Buffer.compare(b.subarray(off, off + n), ZERO.subarray(0, n)) !== 0) return false;
  }
  return true;
}

const ZERO = Buffer.alloc(64 * 1024);

/** A path string (from fsDecode) in the form fs calls take: the string itself when it is UTF-8, else its bytes. */
export function fsPath(s: string): string | Buffer {
  return hasEscapedBytes(s) ? fsEncode(s) : s;
}

/**
 * The last line of defence for text snap prints (issue 20): every control character but newline
 * and tab, as `\xNN` (C0) or `\u00NN` (DEL and C1, a form that is also valid inside JSON strings,
 * where JSON.stringify leaves them raw), so no text from a repository (a tag, a host name, a lock
 * holder) can send an escape sequence to a terminal. Names are escaped before this (displayName);
 * fields that must stay one line are escaped with displayPath where they are printed.
 */
export function terminalSafe(s: string): string {
  if (!/[\x00-\x08\x0b-\x1f\x7f-\x9f]/.test(s)) return s;
  return s
    .replace(/[\x00-\x08\x0b-\x1f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    .replace(/[\x7f-\x9f]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
}
