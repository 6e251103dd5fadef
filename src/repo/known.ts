// What this machine remembers of the encrypted repositories it opened (docs/format.md,
// "Authenticated config"): one small file per location in the cache folder, so a config that a
// storage host rewrote (to say "plain", or with other parameters) is noticed even when the config
// carries no authentication of its own (repositories made before snap authenticated configs), or
// when the key files that would authenticate it were deleted along with it. The cache folder is
// this user's, like the index it holds; nothing in it is secret (ids, a digest of the config, and
// the scrypt parameters and salt of the key file the password opened, which the key file on the
// storage holds as well: the next command starts that derivation early, cli/early-key.ts).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomHex } from '../core/ids.js';
import { fsPath } from '../core/bytes.js';
import { makeDirs } from '../core/durable.js';

export interface KnownRepo {
  format: 'snap-known-repository';
  v: 1;
  /** Where the repository is: a local folder's absolute path, or a remote location's canonical text. */
  location: string;
  /** config.id */
  id: string;
  /** config.version when it was opened (2: encrypted). */
  version: number;
  /** SHA-256 (hex) of the config's bytes. */
  config: string;
  /** Whether a key file vouched for those bytes (else they were taken on first use). */
  authenticated: boolean;
  /** When this machine first opened it. */
  since: string;
  /** The key derivation of the key file the password opened last (absent in records of before). */
  kdf?: KnownKdf;
}

/** A key file's scrypt parameters, its salt in base64, as key files and known records hold them. */
export interface KnownKdf {
  N: number;
  r: number;
  p: number;
  salt: string;
}

/** Whether two records' derivations are the same (both absent counts as the same). */
export function sameKdf(a: KnownKdf | undefined, b: KnownKdf | undefined): boolean {
  if (!a || !b) return a === b;
  return a.N === b.N && a.r === b.r && a.p === b.p && a.salt === b.salt;
}

const MAX_RECORD_BYTES = 64 * 1024;

/** The record file of a location: named by the SHA-256 of the location, so any location fits a file name. */
export function knownFile(dir: string, location: string): string {
  return path.join(dir, createHash('sha256').update(location).digest('hex'));
}

/** The record of a location, or undefined (none, or unreadable: a damaged record is no evidence). */
export function readKnown(dir: string, location: string): { record: KnownRepo; file: string } | undefined {
  const file = knownFile(dir, location);
  let bytes: Buffer;
  try {
    const fd = fs.openSync(fsPath(file), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile() || st.size > MAX_RECORD_BYTES) return undefined;
      bytes = fs.readFileSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
  try {
    const r = JSON.parse(bytes.toString('utf8')) as Partial<KnownRepo>;
    if (r.format !== 'snap-known-repository' || r.v !== 1 || r.location !== location) return undefined;
    if (typeof r.id !== 'string' || typeof r.config !== 'string' || !/^[0-9a-f]{64}$/.test(r.config) || typeof r.version !== 'number') return undefined;
    // A derivation that is not what a key file holds is left out (it is only ever a hint).
    if (r.kdf !== undefined && !isKdf(r.kdf)) delete r.kdf;
    return { record: r as KnownRepo, file };
  } catch {
    return undefined;
  }
}

function isKdf(k: unknown): k is KnownKdf {
  if (typeof k !== 'object' || k === null) return false;
  const { N, r, p, salt } = k as Record<string, unknown>;
  return typeof N === 'number' && typeof r === 'number' && typeof p === 'number' && typeof salt === 'string' && salt.length <= 128;
}

/** Write (or replace) the record of a location: a temporary file renamed into place, owner-only. */
export async function writeKnown(dir: string, r: Omit<KnownRepo, 'format' | 'v'>): Promise<void> {
  await makeDirs(dir, 0o700);
  const file = knownFile(dir, r.location);
  const tmp = path.join(dir, `.tmp-${randomHex(8)}`);
  const record: KnownRepo = { format: 'snap-known-repository', v: 1, ...r };
  try {
    await fsp.writeFile(fsPath(tmp), JSON.stringify(record, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    await fsp.rename(fsPath(tmp), fsPath(file));
  } catch (e) {
    await fsp.rm(fsPath(tmp), { force: true }).catch(() => {});
    throw e;
  }
}

/** Forget a location (a new repository was made there by `init` on this machine). */
export async function forgetKnown(dir: string, location: string): Promise<void> {
  await fsp.rm(fsPath(knownFile(dir, location)), { force: true });
}
