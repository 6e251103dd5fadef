// Cryptographic primitives of encrypted repositories (docs/format.md, "Format 2"; docs/design.md,
// "Encryption"). Everything here is node:crypto: AES-256-GCM runs on AES-NI/VAES here at ~1-1.4 GB/s
// in 64 KiB-1 MiB messages against ~0.7-1 GB/s for ChaCha20-Poly1305, HMAC-SHA256 at the speed of
// SHA-256, and scrypt is native code on libuv's thread pool (the main thread stays free), 0.8 s
// for N=2^17 (0.4-0.5 s on later hosts) against 0.87 s for @noble/hashes' argon2id with 64 MiB on
// the main thread.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { freeBuffer } from './buffer-garbage.js';
import { SnapError } from './errors.js';

export const KEY_BYTES = 32;
export const GCM_NONCE_BYTES = 12;
export const GCM_TAG_BYTES = 16;

/** A fresh random byte string (keys, nonces, salts). */
export function random(n: number): Buffer {
  return randomBytes(n);
}

export function hmacSha256(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/**
 * AES-256-GCM: ciphertext followed by the 16-byte tag. `out`, when given, receives the result at
 * `at` (it must have plaintext.length + 16 bytes there); the written region is returned. The
 * plaintext is read whole before anything is written, so that region may overlap it
 * (encrypted.ts, sealBlobInPlace).
 */
export function gcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array, out?: Buffer, at = 0): Buffer {
  const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: GCM_TAG_BYTES });
  c.setAAD(ad);
  const dst = out ?? Buffer.allocUnsafe(plaintext.length + GCM_TAG_BYTES);
  const base = out ? at : 0;
  let n = 0;
  if (plaintext.length > 0) {
    const sealed = c.update(plaintext);
    n += sealed.copy(dst, base);
    freeBuffer(sealed); // the cipher's own output, copied
  }
  n += c.final().copy(dst, base + n);
  c.getAuthTag().copy(dst, base + n);
  return dst.subarray(base, base + n + GCM_TAG_BYTES);
}

/**
 * Open what gcmSeal sealed; undefined when the tag does not verify (changed bytes, wrong key, nonce
 * or AD). The plaintext comes in a buffer of its own, which its caller hands to freeBuffer once
 * it drops it: after copying it, or when a segment cache lets it go (core/buffer-garbage.ts).
 */
export function gcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Buffer | undefined {
  if (sealed.length < GCM_TAG_BYTES) return undefined;
  const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: GCM_TAG_BYTES });
  d.setAAD(ad);
  d.setAuthTag(sealed.subarray(sealed.length - GCM_TAG_BYTES));
  const body = sealed.subarray(0, sealed.length - GCM_TAG_BYTES);
  try {
    const head = body.length > 0 ? d.update(body) : Buffer.alloc(0);
    const tail = d.final();
    return tail.length === 0 ? head : Buffer.concat([head, tail]);
  } catch {
    return undefined;
  }
}

export interface ScryptParams {
  algorithm: 'scrypt';
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
  /** Salt, 16 to 64 bytes. */
  salt: Buffer;
}

/**
 * The parameters new key files get (docs/security.md, "Passwords"): the work of N=2^17, r=8, p=1
 * (0.4-0.8 s on the development VMs) in two lanes of 64 MiB, which OpenSSL computes one after the
 * other in the same memory. Every encrypted command holds this memory while it derives its key, so
 * it set the peak of the short ones (128 MiB for N=2^17, p=1); an attacker's memory times time
 * per guess is still 1.6 times that of restic's calibrated N=2^15, r=8, p=5 here.
 */
export const DEFAULT_SCRYPT = { N: 2 ** 16, r: 8, p: 2 } as const;
/** Bounds on stored parameters: a crafted key file must not make a reader allocate gigabytes or spin for hours. */
export const SCRYPT_LIMITS = { minN: 2 ** 10, maxN: 2 ** 20, maxR: 32, maxP: 16 } as const;

/** Why stored scrypt parameters are refused, or undefined when they are in bounds. */
export function scryptProblem(p: { N: unknown; r: unknown; p: unknown; salt: unknown }): string | undefined {
  const { N, r, p: par, salt } = p;
  if (typeof N !== 'number' || !Number.isSafeInteger(N) || N < SCRYPT_LIMITS.minN || N > SCRYPT_LIMITS.maxN || (N & (N - 1)) !== 0) {
    return `scrypt N must be a power of two from 2^10 to 2^20`;
  }
  if (typeof r !== 'number' || !Number.isSafeInteger(r) || r < 1 || r > SCRYPT_LIMITS.maxR) return `scrypt r must be 1 to ${SCRYPT_LIMITS.maxR}`;
  if (typeof par !== 'number' || !Number.isSafeInteger(par) || par < 1 || par > SCRYPT_LIMITS.maxP) return `scrypt p must be 1 to ${SCRYPT_LIMITS.maxP}`;
  if (!(salt instanceof Uint8Array) || salt.length < 16 || salt.length > 64) return 'the salt must be 16 to 64 bytes';
  return undefined;
}

/** Derive a 32-byte key from a password (on the thread pool). */
export async function deriveKey(password: Uint8Array, k: ScryptParams): Promise<Buffer> {
  const bad = scryptProblem(k);
  if (bad) throw new SnapError('SNAP_CORRUPT', `a key file's parameters are refused: ${bad}`);
  const e = early;
  if (e && sameDerivation(e, password, k)) {
    early = undefined;
    e.password.fill(0);
    return e.key;
  }
  return derive(password, k);
}

/**
 * A derivation started before it was asked for (deriveKeyEarly), kept until a deriveKey of the
 * same password and parameters takes it. One at most.
 */
let early: { password: Buffer; k: ScryptParams; key: Promise<Buffer> } | undefined;

/**
 * Start the derivation deriveKey will be asked for, while the process does other work (the CLI
 * loads its modules meanwhile: cli/early-key.ts). deriveKey of the same password and parameters
 * then waits for it instead of starting its own; any other deriveKey ignores it. Parameters
 * scryptProblem refuses start nothing.
 */
export function deriveKeyEarly(password: Uint8Array, k: ScryptParams): void {
  if (scryptProblem(k) || !k.salt) return;
  const key = derive(password, k);
  key.catch(() => {}); // deriveKey, which takes it, reports its failure
  early = { password: Buffer.from(password), k: { ...k, salt: Buffer.from(k.salt) }, key };
}

function sameDerivation(e: { password: Buffer; k: ScryptParams }, password: Uint8Array, k: ScryptParams): boolean {
  if (e.k.algorithm !== k.algorithm || e.k.N !== k.N || e.k.r !== k.r || e.k.p !== k.p || !k.salt || !e.k.salt!.equals(k.salt)) return false;
  return e.password.length === password.length && timingSafeEqual(e.password, password);
}

function derive(password: Uint8Array, k: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // scrypt needs 128 * N * r bytes (plus a little): allow exactly that much.
    scrypt(password, k.salt, KEY_BYTES, { N: k.N, r: k.r, p: k.p, maxmem: 129 * k.N * k.r + 1024 * 1024 }, (err, key) => {
      if (err) reject(new SnapError('SNAP_INTERNAL', `key derivation failed: ${err.message}`));
      else resolve(key);
    });
  });
}
