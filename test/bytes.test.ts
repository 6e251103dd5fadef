// Paths as bytes (src/core/bytes.ts): the lossless string form and the form shown to people.
import { describe, expect, it } from 'vitest';
import { displayName, displayPath, fsDecode, fsEncode, fsPath, hasEscapedBytes, isUtf8 } from '../src/core/bytes.js';

const b = (...parts: (string | number[])[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

describe('fsDecode / fsEncode: lossless', () => {
  const samples: [string, Buffer][] = [
    ['ascii', b('plain/name.txt')],
    ['UTF-8', b('ünïcödé ✓ 😀')],
    ['a lone 0xff', b('dir', [0xff])],
    ['a truncated sequence', b([0xe2, 0x82], 'x')],
    ['an encoded surrogate (invalid UTF-8)', b([0xed, 0xa0, 0x80])],
    ['an overlong slash', b([0xc0, 0xaf])],
    ['past U+10FFFF', b([0xf4, 0x90, 0x80, 0x80])],
    ['U+FFFD itself, valid', b('a\uFFFDb')],
    ['every byte', Buffer.from(Array.from({ length: 256 }, (_, i) => i))],
  ];
  it.each(samples)('%s round-trips', (_what, bytes) => {
    const s = fsDecode(bytes);
    expect(fsEncode(s).equals(bytes)).toBe(true);
    expect(hasEscapedBytes(s)).toBe(!isUtf8(bytes));
    expect(Buffer.isBuffer(fsPath(s))).toBe(!isUtf8(bytes));
  });

  it('decodes valid UTF-8 exactly as Node does, so such paths keep their text (and record ids)', () => {
    expect(fsDecode(b('ünïcödé'))).toBe('ünïcödé');
    expect(fsPath('/home/ann')).toBe('/home/ann');
  });

  it('maps each invalid byte to U+DC80..U+DCFF (Python surrogateescape)', () => {
    expect(fsDecode(b('a', [0xff], 'b'))).toBe('a\udcffb');
    expect(JSON.stringify(fsDecode(b([0x80])))).toBe('"\\udc80"');
  });
});

describe('displayName: one line, unambiguous', () => {
  it.each([
    ['plain', b('a b.txt'), 'a b.txt'],
    ['UTF-8 stays', b('ünï ✓'), 'ünï ✓'],
    ['newline, tab, CR', b('a\nb\tc\rd'), 'a\\nb\\tc\\rd'],
    ['ESC and other C0', b('x\x1b[2Jy\x01'), 'x\\x1b[2Jy\\x01'],
    ['DEL', b('a\x7f'), 'a\\x7f'],
    ['a backslash is doubled, so an escape cannot be faked', b('a\\xffb'), 'a\\\\xffb'],
    ['invalid bytes', b('bad', [0xff, 0xfe]), 'bad\\xff\\xfe'],
    ['C1 control U+0085', b([0xc2, 0x85]), '\\xc2\\x85'],
    ['line separator U+2028', b('a\u2028b'), 'a\\xe2\\x80\\xa8b'],
    ['bidi override U+202E', b('a\u202eb'), 'a\\xe2\\x80\\xaeb'],
  ])('%s', (_what, bytes, shown) => {
    expect(displayName(bytes)).toBe(shown);
    expect(displayName(bytes)).not.toMatch(/[\x00-\x1f\x7f]/);
  });

  it('a name with invalid bytes and the name spelled with their escapes look different', () => {
    expect(displayName(b([0xff]))).not.toBe(displayName(b('\\xff')));
    expect(displayPath(fsDecode(b('d', [0xff])))).toBe('d\\xff');
  });
});
