// Request parameters that name things: snapshot paths (bytes, given as hex so names that are not
// UTF-8 survive a URL), restore targets, filters. Everything is checked before any repository or
// file is touched: a path with `..`, `.` or a NUL byte is refused, never normalised.
import * as path from 'node:path';
import { fsDecode } from '../core/bytes.js';
import type { SnapshotFilter } from '../ops/tree/refs.js';
import { HttpError } from './http.js';

const bad = (message: string): HttpError => new HttpError(400, 'SNAP_UNSAFE_PATH', message);

/** Refuses NUL and `.`/`..` components; requires an absolute path. */
export function checkPathBytes(p: Buffer, what: string): Buffer {
  if (p.includes(0)) throw bad(`${what} holds a NUL byte`);
  if (p.length === 0 || p[0] !== 0x2f) throw bad(`${what} must be absolute (start with /)`);
  for (const part of p.toString('latin1').split('/')) {
    if (part === '..' || part === '.') throw bad(`${what} must not hold '${part}' components`);
  }
  return p;
}

/** A snapshot path from `path_hex` (raw bytes in hex) or `path` (text); `/` when neither is given. */
export function snapshotPath(q: URLSearchParams, name = 'path'): Buffer {
  const hex = q.get(`${name}_hex`);
  if (hex !== null) return fromHexParam(hex, `${name}_hex`);
  const text = q.get(name);
  return checkPathBytes(Buffer.from(text ?? '/', 'utf8'), name);
}

export function fromHexParam(hex: string, name: string): Buffer {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(hex)) throw new HttpError(400, 'SNAP_USAGE', `${name} must be hex digits`);
  return checkPathBytes(Buffer.from(hex, 'hex'), name);
}

/** Every value of a repeatable path parameter (`path_hex=..&path_hex=..`). */
export function snapshotPaths(q: URLSearchParams, name = 'path'): Buffer[] {
  const hex = q.getAll(`${name}_hex`).map((h) => fromHexParam(h, `${name}_hex`));
  const text = q.getAll(name).map((t) => checkPathBytes(Buffer.from(t, 'utf8'), name));
  return [...hex, ...text];
}

/** The lossless text form ops take (core/bytes.ts). */
export const asUserPath = (p: Buffer): string => fsDecode(p);

/** A folder on this machine to restore into: absolute, already normal (no `..`, `.`, NUL). */
export function restoreTarget(v: unknown): string {
  if (typeof v !== 'string' || v === '') throw new HttpError(400, 'SNAP_USAGE', 'target must be a folder path');
  checkPathBytes(Buffer.from(v, 'utf8'), 'target');
  return path.resolve(v);
}

export function filterParams(q: URLSearchParams): SnapshotFilter {
  return { host: q.getAll('host').filter((h) => h !== ''), tag: q.getAll('tag').filter((t) => t !== ''), path: q.getAll('source').filter((p) => p !== '') };
}

export function required(q: URLSearchParams, name: string): string {
  const v = q.get(name);
  if (v === null || v === '') throw new HttpError(400, 'SNAP_USAGE', `the ${name} parameter is required`);
  if (v.includes('\0')) throw bad(`${name} holds a NUL byte`);
  return v;
}

/**
 * The raw request target, before anything decodes it: an encoded slash, backslash or NUL in the
 * path part could make one route's parameter look like another path; refused outright.
 */
export function checkRawTarget(url: string): void {
  // Only origin-form targets (`/path?query`): no absolute URLs, no `//host` look-alikes.
  if (!url.startsWith('/') || url.startsWith('//')) throw bad('the request target must be a path starting with a single /');
  const q = url.indexOf('?');
  const pathPart = q < 0 ? url : url.slice(0, q);
  if (/%2f|%5c|%00/i.test(pathPart)) throw bad('encoded slashes, backslashes and NUL are not allowed in the request path');
  if (pathPart.includes('\\') || pathPart.split('/').some((s) => s === '..' || s === '.' || /^%2e%2e$|^\.%2e$|^%2e\.$|^%2e$/i.test(s))) {
    throw bad("'.' and '..' are not allowed in the request path");
  }
  if (/%00/.test(url)) throw bad('NUL is not allowed in a request');
}
