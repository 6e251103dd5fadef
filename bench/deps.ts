// Do fflate and @noble/hashes beat what snap uses now (node:zlib, node:crypto) anywhere snap
// needs compression or hashing? docs/design.md ("fflate and @noble/hashes") records the answer.
//
//   node --import tsx bench/deps.ts
//
// 1. Deflate and inflate of objects of 512 B to 1 MiB (the deflate codec compresses objects up
//    to 16 KiB synchronously; export and verify stream larger pieces): text from this project's
//    node_modules (.js/.ts/.md/.json), best of 5 passes.
// 2. The primitives the coming encryption needs: HMAC-SHA256 (keyed ids), HKDF (subkeys), scrypt
//    and argon2id (a key from a password; node:crypto has argon2 only from Node 24.7), best of 3.
import * as crypto from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import * as fflate from 'fflate';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { scrypt } from '@noble/hashes/scrypt.js';
import { argon2id } from '@noble/hashes/argon2.js';

const files: Buffer[] = [];
const walk = (d: string, depth: number): void => {
  for (const n of readdirSync(d)) {
    const p = join(d, n);
    const st = statSync(p);
    if (st.isDirectory() && depth < 6) walk(p, depth + 1);
    else if (st.isFile() && /\.(js|ts|md|json)$/.test(n) && files.length < 4000) files.push(readFileSync(p));
  }
};
walk(join(import.meta.dirname, '..', 'node_modules'), 0);
const text = Buffer.concat(files);
const objects = (size: number, n: number): Buffer[] =>
  Array.from({ length: n }, (_, i) => {
    const off = (i * 7919 * size) % (text.length - size);
    return text.subarray(off, off + size);
  });

function codec(label: string, objs: Uint8Array[], fn: (o: Uint8Array) => Uint8Array): void {
  const total = objs.reduce((a, o) => a + o.length, 0);
  let best = Infinity;
  let out = 0;
  for (let r = 0; r < 5; r++) {
    const s = performance.now();
    out = 0;
    for (const o of objs) out += fn(o).length;
    best = Math.min(best, performance.now() - s);
  }
  console.log(`| ${label} | ${((best * 1000) / objs.length).toFixed(1)} µs | ${(total / 1e3 / best).toFixed(0)} MB/s | ${(out / total).toFixed(3)} |`);
}

console.log('| object size, codec | per object | throughput | out/in |\n| --- | --- | --- | --- |');
for (const [size, n] of [[512, 4000], [1600, 4000], [16384, 1000], [131072, 200], [1048576, 30]] as const) {
  const objs = objects(size, n);
  for (const level of [1, 6]) {
    codec(`${size} B: node:zlib deflateRawSync L${level}`, objs, (o) => zlib.deflateRawSync(o, { level }));
    codec(`${size} B: fflate deflateSync L${level}`, objs, (o) => fflate.deflateSync(o, { level: level as 1 | 6 }));
  }
  const z = objs.map((o) => zlib.deflateRawSync(o, { level: 1 }));
  codec(`${size} B: node:zlib inflateRawSync`, z, (o) => zlib.inflateRawSync(o));
  codec(`${size} B: fflate inflateSync`, z, (o) => fflate.inflateSync(o));
}

function prim(label: string, n: number, fn: () => unknown): void {
  fn();
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const s = performance.now();
    for (let i = 0; i < n; i++) fn();
    best = Math.min(best, (performance.now() - s) / n);
  }
  console.log(`| ${label} | ${best < 1 ? `${(best * 1000).toFixed(1)} µs` : `${best.toFixed(1)} ms`} |`);
}

const key = crypto.randomBytes(32);
const small = crypto.randomBytes(64);
const mib = crypto.randomBytes(1 << 20);
const pw = new TextEncoder().encode('correct horse battery staple');
console.log('\n| primitive | time |\n| --- | --- |');
prim('node:crypto HMAC-SHA256, 64 B', 20000, () => crypto.createHmac('sha256', key).update(small).digest());
prim('noble HMAC-SHA256, 64 B', 20000, () => hmac(sha256, key, small));
prim('node:crypto HMAC-SHA256, 1 MiB', 50, () => crypto.createHmac('sha256', key).update(mib).digest());
prim('noble HMAC-SHA256, 1 MiB', 10, () => hmac(sha256, key, mib));
prim('node:crypto hkdfSync SHA-256 → 64 B', 20000, () => crypto.hkdfSync('sha256', key, small, 'snap', 64));
prim('noble hkdf SHA-256 → 64 B', 20000, () => hkdf(sha256, key, small, new TextEncoder().encode('snap'), 64));
prim('node:crypto scryptSync N=2^15 r=8 p=1 (32 MiB)', 3, () => crypto.scryptSync(pw, small, 32, { N: 1 << 15, r: 8, p: 1, maxmem: 64 << 20 }));
prim('noble scrypt N=2^15 r=8 p=1 (32 MiB)', 2, () => scrypt(pw, small, { N: 1 << 15, r: 8, p: 1, dkLen: 32 }));
prim('noble argon2id m=19 MiB t=2 p=1', 2, () => argon2id(pw, small, { m: 19456, t: 2, p: 1, dkLen: 32 }));
prim('noble argon2id m=64 MiB t=3 p=1', 2, () => argon2id(pw, small, { m: 65536, t: 3, p: 1, dkLen: 32 }));
