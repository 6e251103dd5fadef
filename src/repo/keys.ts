// Key files of an encrypted repository (docs/format.md, "Key files"): `keys/<key id>`, each a copy
// of the repository's master keys sealed under a key derived from one password. Several passwords
// open one repository; changing a password writes one small file and never touches the data.
import { SnapError, isSnapError } from '../core/errors.js';
import { DEFAULT_SCRYPT, deriveKey, GCM_NONCE_BYTES, gcmOpen, gcmSeal, KEY_BYTES, random, type ScryptParams, scryptProblem } from '../core/crypto.js';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomHex } from '../core/ids.js';
import { fsPath } from '../core/bytes.js';
import type { Backend } from '../backend/backend.js';
import type { KnownKdf } from './known.js';

export const KEYS = 'keys/';
const MAX_KEY_FILE_BYTES = 64 * 1024;

/** The secrets of an encrypted repository, the same in every key file. */
export interface MasterKeys {
  /** Seals every blob (backend/encrypted.ts). */
  dataKey: Buffer;
  /** Keys object ids: HMAC-SHA256(idKey, object bytes). */
  idKey: Buffer;
  /** The chunker's gear seed (64 hex digits), secret: chunk boundaries are a fingerprint of content. */
  gearSeed: string;
}

export interface KeyInfo {
  id: string;
  created: string;
  kdf: Omit<ScryptParams, 'salt'>;
}

export interface Unlocked {
  master: MasterKeys;
  /** The key file the password opened. */
  keyId: string;
  /** The SHA-256 (hex, configDigest) of the config bytes the repository was opened with. */
  config: string;
  /**
   * Whether the opened key file vouches for those bytes (the digest is sealed in it, docs/format.md
   * "Key files", so only a password holder can have written it). False for a key file written
   * before snap authenticated configs: the config was then accepted by the rule of docs/format.md,
   * "Authenticated config".
   */
  authenticated: boolean;
  /**
   * The key derivation of that key file (public: it is in the key file as stored), which this
   * machine remembers for the location (repo/known.ts) so that the next command can start it before
   * the repository is read (cli/early-key.ts). Absent right after init.
   */
  kdf?: KnownKdf;
}

export function newMasterKeys(): MasterKeys {
  return { dataKey: random(KEY_BYTES), idKey: random(KEY_BYTES), gearSeed: random(32).toString('hex') };
}

export function keyName(id: string): string {
  return `${KEYS}${id}`;
}

function keyIdFromName(name: string): string | undefined {
  return name.startsWith(KEYS) ? keyFileId(name.slice(KEYS.length)) : undefined;
}

/** Associated data of a key file's sealed master keys: bound to its repository and its name. */
function keyAd(repoId: string, keyId: string): Buffer {
  return Buffer.from(`snap-key v1 ${repoId} ${keyId}`);
}

interface KeyFile {
  format: 'snap-key';
  v: 1;
  /**
   * The repository id this key file was made for (the id in its associated data), so a reader can
   * open it even when the config's id was changed and then tell that the config was changed.
   * Absent from key files written before snap authenticated configs: their associated data holds
   * the config's id.
   */
  repo?: string;
  created: string;
  kdf: { algorithm: 'scrypt'; N: number; r: number; p: number; salt: string };
  nonce: string;
  sealed: string;
}

/** The SHA-256 of a config's bytes as key files record it (lowercase hex). */
export function configDigest(configBytes: Uint8Array): string {
  return createHash('sha256').update(configBytes).digest('hex');
}

/**
 * Write a new key file for `password`; returns its id. `config` is the SHA-256 (configDigest) of
 * the repository's config bytes: sealed with the master keys, it authenticates the config.
 */
export async function addKey(
  backend: Backend,
  repoId: string,
  master: MasterKeys,
  password: Buffer,
  o: { now: Date; scrypt?: { N: number; r: number; p: number }; config: string },
): Promise<string> {
  if (!/^[0-9a-f]{64}$/.test(o.config)) throw new SnapError('SNAP_INTERNAL', 'a key file needs the SHA-256 of the config it authenticates');
  const params: ScryptParams = { algorithm: 'scrypt', ...(o.scrypt ?? DEFAULT_SCRYPT), salt: random(32) };
  const kek = await deriveKey(password, params);
  const id = randomHex(16);
  const nonce = random(GCM_NONCE_BYTES);
  const payload = Buffer.from(
    JSON.stringify({ dataKey: master.dataKey.toString('base64'), idKey: master.idKey.toString('base64'), gearSeed: master.gearSeed, config: o.config }),
  );
  const file: KeyFile = {
    format: 'snap-key',
    v: 1,
    repo: repoId,
    created: o.now.toISOString(),
    kdf: { algorithm: 'scrypt', N: params.N, r: params.r, p: params.p, salt: params.salt.toString('base64') },
    nonce: nonce.toString('base64'),
    sealed: gcmSeal(kek, nonce, payload, keyAd(repoId, id)).toString('base64'),
  };
  payload.fill(0);
  if (!(await backend.putIfAbsent(keyName(id), Buffer.from(JSON.stringify(file, null, 2) + '\n')))) {
    throw new SnapError('SNAP_INTERNAL', `key ${id} exists already`);
  }
  return id;
}

function parseKeyFile(bytes: Buffer, id: string): KeyFile {
  const bad = (why: string): SnapError => new SnapError('SNAP_CORRUPT', `key file ${id} is damaged: ${why}`);
  let f: KeyFile;
  try {
    f = JSON.parse(bytes.toString('utf8')) as KeyFile;
  } catch {
    throw bad('not JSON');
  }
  if (!f || typeof f !== 'object' || f.format !== 'snap-key') throw bad('not a snap key file');
  if (f.v !== 1) throw bad(`unknown version ${String(f.v)}`);
  if (!f.kdf || f.kdf.algorithm !== 'scrypt') throw bad('unknown key derivation');
  const problem = scryptProblem({ ...f.kdf, salt: typeof f.kdf.salt === 'string' ? Buffer.from(f.kdf.salt, 'base64') : undefined });
  if (problem) throw bad(problem);
  if (typeof f.nonce !== 'string' || Buffer.from(f.nonce, 'base64').length !== GCM_NONCE_BYTES) throw bad('the nonce is not 12 bytes');
  if (typeof f.sealed !== 'string') throw bad('no sealed keys');
  if (typeof f.created !== 'string') throw bad('no creation time');
  if (f.repo !== undefined && (typeof f.repo !== 'string' || !/^[0-9a-f]{32}$/.test(f.repo))) throw bad('its repository id is not 32 hex digits');
  return f;
}

/**
 * Whether the local repository at `root` looks encrypted (it has a keys/ folder): opening it then
 * derives a key, about 0.4 s that a command may use for work of its own meanwhile (a backup's walk
 * ahead). A guess, never a decision: opening the repository finds out.
 */
export function looksEncrypted(root: string): boolean {
  try {
    return fs.statSync(fsPath(path.join(root, KEYS))).isDirectory();
  } catch {
    return false;
  }
}

/** A key file's name in `keys/` (the id: 32 hex digits), or undefined for other names. */
export function keyFileId(name: string): string | undefined {
  return /^[0-9a-f]{32}$/.test(name) ? name : undefined;
}

/** The derivation of a key file's (or a known record's) parameters, its salt decoded from base64. */
export function scryptOf(k: KnownKdf): ScryptParams {
  return { algorithm: 'scrypt', N: k.N, r: k.r, p: k.p, salt: Buffer.from(k.salt, 'base64') };
}

/**
 * The key derivation a key file's bytes ask for (checked as unlock checks them; SNAP_CORRUPT when
 * damaged): what the CLI starts early (cli/early-key.ts). Key files are tried in the order of their
 * ids (keyIds).
 */
export function keyFileKdf(bytes: Buffer, id: string): ScryptParams {
  if (bytes.length > MAX_KEY_FILE_BYTES) throw new SnapError('SNAP_CORRUPT', `key file ${id} has ${bytes.length} bytes, far more than a key file holds`);
  const f = parseKeyFile(bytes, id);
  return scryptOf(f.kdf);
}

function parseMaster(b: Buffer, id: string): MasterKeys & { config?: string } {
  const bad = new SnapError('SNAP_CORRUPT', `key file ${id} holds damaged keys`);
  let m: { dataKey?: unknown; idKey?: unknown; gearSeed?: unknown; config?: unknown };
  try {
    m = JSON.parse(b.toString('utf8')) as typeof m;
  } catch {
    throw bad;
  }
  if (typeof m.dataKey !== 'string' || typeof m.idKey !== 'string' || typeof m.gearSeed !== 'string' || !/^[0-9a-f]{64}$/.test(m.gearSeed)) throw bad;
  const dataKey = Buffer.from(m.dataKey, 'base64');
  const idKey = Buffer.from(m.idKey, 'base64');
  if (dataKey.length !== KEY_BYTES || idKey.length !== KEY_BYTES) throw bad;
  if (m.config !== undefined && (typeof m.config !== 'string' || !/^[0-9a-f]{64}$/.test(m.config))) throw bad;
  return { dataKey, idKey, gearSeed: m.gearSeed, config: m.config };
}

async function readKeyFile(backend: Backend, id: string): Promise<KeyFile> {
  const st = await backend.stat(keyName(id));
  if (!st) throw new SnapError('SNAP_NOT_FOUND', `no key ${id} in this repository`);
  if (st.size > MAX_KEY_FILE_BYTES) throw new SnapError('SNAP_CORRUPT', `key file ${id} has ${st.size} bytes, far more than a key file holds`);
  return parseKeyFile(await backend.get(keyName(id)), id);
}

export async function keyIds(backend: Backend): Promise<string[]> {
  const ids: string[] = [];
  for await (const b of backend.list(KEYS)) {
    const id = keyIdFromName(b.name);
    if (id) ids.push(id);
  }
  return ids.sort();
}

export async function listKeys(backend: Backend): Promise<(KeyInfo | { id: string; damage: string })[]> {
  const out: (KeyInfo | { id: string; damage: string })[] = [];
  for (const id of await keyIds(backend)) {
    try {
      const f = await readKeyFile(backend, id);
      out.push({ id, created: f.created, kdf: { algorithm: 'scrypt', N: f.kdf.N, r: f.kdf.r, p: f.kdf.p } });
    } catch (e) {
      if (!isSnapError(e, 'SNAP_CORRUPT')) throw e;
      out.push({ id, damage: e.message });
    }
  }
  return out;
}

/** The config's bytes differ from those a key file vouches for: the config was changed after init. */
export function configTampered(where: string, detail: string): SnapError {
  return new SnapError(
    'SNAP_BAD_CONFIG',
    `the config of the encrypted repository at ${where} failed authentication: ${detail}. It was changed after the repository was made ` +
      `(by whoever holds the storage, or by damage); nothing was read or written. Put back the config from a copy of the repository`,
  );
}

/**
 * Open the master keys with a password: every key file is tried (each costs one derivation,
 * about a second). No key opening is SNAP_WRONG_PASSWORD; the password is never part of a message.
 * `config` is the SHA-256 of the config bytes read (configDigest): a key file that opens and vouches
 * for other bytes means the config was changed, SNAP_BAD_CONFIG (configTampered), whatever its id
 * says. A key file written before configs were authenticated vouches for nothing (Unlocked.config
 * is then undefined and the caller applies the rule for those).
 */
export async function unlock(backend: Backend, repoId: string, password: Buffer, config: { digest: string; where: string }): Promise<Unlocked> {
  const ids = await keyIds(backend);
  if (ids.length === 0) throw new SnapError('SNAP_BAD_CONFIG', 'the repository is encrypted but holds no key file (keys/): it cannot be opened');
  const damaged: string[] = [];
  let fallback: Unlocked | undefined;
  for (const id of ids) {
    let f: KeyFile;
    try {
      f = await readKeyFile(backend, id);
    } catch (e) {
      if (!isSnapError(e, 'SNAP_CORRUPT')) throw e;
      damaged.push(e.message);
      continue;
    }
    const kdf = { N: f.kdf.N, r: f.kdf.r, p: f.kdf.p, salt: f.kdf.salt };
    const kek = await deriveKey(password, scryptOf(kdf));
    // A key file that names its repository is bound to that id (the config's may have been changed).
    const payload = gcmOpen(kek, Buffer.from(f.nonce, 'base64'), Buffer.from(f.sealed, 'base64'), keyAd(f.repo ?? repoId, id));
    if (!payload) continue;
    const { config: vouched, ...master } = parseMaster(payload, id);
    payload.fill(0);
    if (f.repo !== undefined && vouched === undefined) throw new SnapError('SNAP_CORRUPT', `key file ${id} holds damaged keys (no config digest)`);
    if (f.repo !== undefined && f.repo !== repoId) {
      throw configTampered(config.where, `its id is ${repoId} but key file ${id} was made for repository ${f.repo}`);
    }
    if (vouched !== undefined && vouched !== config.digest) {
      throw configTampered(config.where, `its bytes are not those key file ${id} was sealed with (SHA-256 ${config.digest.slice(0, 16)}..., expected ${vouched.slice(0, 16)}...)`);
    }
    if (vouched !== undefined) return { master, keyId: id, config: config.digest, authenticated: true, kdf };
    // A key file of before configs were authenticated: used only if no key file this password
    // opens vouches for the config (a host may have put back an old key file the password opens).
    fallback ??= { master, keyId: id, config: config.digest, authenticated: false, kdf };
  }
  if (fallback) return fallback;
  // Not one key file could be tried: that is damage (or a failed read), not a wrong password.
  if (damaged.length === ids.length) throw new SnapError('SNAP_CORRUPT', `no key file of the repository can be read: ${damaged.join('; ')}`);
  const also = damaged.length > 0 ? ` (and ${damaged.length} key file(s) are damaged: ${damaged.join('; ')})` : '';
  throw new SnapError('SNAP_WRONG_PASSWORD', `wrong password: it opens none of the repository's ${ids.length} key(s)${also}`);
}

/** Remove a key file; the last one, and the one in use, are refused. */
export async function removeKey(backend: Backend, id: string, inUse: string): Promise<void> {
  const ids = await keyIds(backend);
  if (!ids.includes(id)) throw new SnapError('SNAP_NOT_FOUND', `no key ${id} in this repository ('snap key list' shows them)`);
  if (ids.length === 1) throw new SnapError('SNAP_USAGE', `key ${id} is the repository's last key: without it nothing can be read ever again (add another with 'snap key add' first)`);
  if (id === inUse) throw new SnapError('SNAP_USAGE', `key ${id} is the one this password opens: remove it with another password, or change it with 'snap key passwd'`);
  await backend.delete(keyName(id));
}

/** Match a key id given in full or by a unique prefix of at least 4 digits. */
export async function resolveKeyId(backend: Backend, ref: string): Promise<string> {
  const ids = await keyIds(backend);
  if (!/^[0-9a-f]{4,32}$/.test(ref)) throw new SnapError('SNAP_USAGE', `not a key id: ${ref}`);
  const hits = ids.filter((id) => id.startsWith(ref));
  if (hits.length === 0) throw new SnapError('SNAP_NOT_FOUND', `no key ${ref} in this repository ('snap key list' shows them)`);
  if (hits.length > 1) throw new SnapError('SNAP_AMBIGUOUS', `${ref} matches ${hits.length} keys; give more digits`);
  return hits[0]!;
}
