// The repository config: the parameters every reader and writer must agree on. JSON, so a person
// can read it; written once by init and never changed in place.
import { SnapError } from '../core/errors.js';

export const FORMAT_VERSION = 1;
/** Encrypted repositories (docs/format.md, "Format 2"); plain ones stay format 1. */
export const ENCRYPTED_FORMAT_VERSION = 2;
export type CodecName = 'none' | 'deflate' | 'zstd';

export interface ChunkerParams {
  algorithm: 'fastcdc-gear32-nc2';
  minSize: number;
  avgSize: number;
  maxSize: number;
  /**
   * Hex seed for the per-repository gear table: chunk boundaries cannot be predicted from outside.
   * Format 1 only: an encrypted repository keeps it in its key files, secret.
   */
  gearSeed?: string;
}

export interface RepoConfig {
  format: 'snap-repository';
  version: number;
  id: string;
  created: string;
  /** Object ids: bare SHA-256 (format 1), HMAC-SHA256 under the secret id key (format 2). */
  hash: 'sha256' | 'hmac-sha256';
  chunker: ChunkerParams;
  compression: { codec: CodecName; level: number };
  packSize: number;
  /** Format 2 only: how blobs are sealed (backend/encrypted.ts). */
  encryption?: EncryptionParams;
}

export interface EncryptionParams {
  cipher: 'aes-256-gcm';
  /** Plaintext bytes per sealed segment. */
  segmentSize: 65536;
  kdf: 'scrypt';
}

export const ENCRYPTION: EncryptionParams = { cipher: 'aes-256-gcm', segmentSize: 65536, kdf: 'scrypt' };

export function isEncrypted(c: RepoConfig): boolean {
  return c.version === ENCRYPTED_FORMAT_VERSION;
}

export function encodeConfig(c: RepoConfig): Buffer {
  return Buffer.from(JSON.stringify(c, null, 2) + '\n');
}

export function decodeConfig(bytes: Buffer, where: string): RepoConfig {
  let c: Partial<RepoConfig>;
  try {
    c = JSON.parse(bytes.toString('utf8')) as Partial<RepoConfig>;
  } catch (e) {
    throw new SnapError('SNAP_BAD_CONFIG', `the config of the repository at ${where} is damaged (not JSON)`, { cause: e });
  }
  if (c.format !== 'snap-repository') throw new SnapError('SNAP_BAD_CONFIG', `${where} does not hold a snap repository config`);
  if (c.version !== FORMAT_VERSION && c.version !== ENCRYPTED_FORMAT_VERSION) {
    throw new SnapError('SNAP_BAD_CONFIG', `the repository at ${where} has format version ${String(c.version)}; this snap reads versions ${FORMAT_VERSION} and ${ENCRYPTED_FORMAT_VERSION}`);
  }
  const bad = configProblem(c);
  if (bad) throw new SnapError('SNAP_BAD_CONFIG', `the config of the repository at ${where} is damaged or crafted: ${bad}`);
  return c as RepoConfig;
}

/** The largest pack target size a config may set: a pack is built in memory (twice this), so 2^31 or 2^40 would hold a whole backup in memory. restic's largest is 128 MiB. */
export const MAX_PACK_SIZE = 256 * 1024 * 1024;
/** Compression levels each codec accepts (zstd's negative levels are its fast modes). */
export const LEVELS: Record<CodecName, [number, number]> = { zstd: [-7, 22], deflate: [-1, 9], none: [-1, 22] };

const isInt = (v: unknown, lo: number, hi: number): boolean => Number.isSafeInteger(v) && (v as number) >= lo && (v as number) <= hi;

/** Which field of a config is missing or out of range (docs/format.md, "config"), or undefined. */
export function configProblem(c: Partial<RepoConfig>): string | undefined {
  if (typeof c.id !== 'string' || c.id.length === 0 || c.id.length > 128) return '`id` is missing';
  const encrypted = c.version === ENCRYPTED_FORMAT_VERSION;
  if (!encrypted && c.hash !== 'sha256') return '`hash` is not "sha256"';
  if (encrypted && c.hash !== 'hmac-sha256') return '`hash` is not "hmac-sha256" (format 2)';
  if (encrypted) {
    const e = c.encryption;
    if (!e || typeof e !== 'object' || e.cipher !== 'aes-256-gcm' || e.segmentSize !== 65536 || e.kdf !== 'scrypt') {
      return '`encryption` is not {"cipher": "aes-256-gcm", "segmentSize": 65536, "kdf": "scrypt"}';
    }
  } else if (c.encryption !== undefined) return '`encryption` is set in a format 1 config';
  const ch = c.chunker;
  if (!ch || typeof ch !== 'object' || ch.algorithm !== 'fastcdc-gear32-nc2') return '`chunker.algorithm` is not "fastcdc-gear32-nc2"';
  if (!isInt(ch.minSize, 64, 64 * 1024 * 1024) || !isInt(ch.avgSize, 64, 64 * 1024 * 1024) || !isInt(ch.maxSize, 64, 64 * 1024 * 1024)) {
    return '`chunker` sizes must be integers from 64 to 64 MiB';
  }
  if (!(ch.minSize < ch.avgSize && ch.avgSize < ch.maxSize)) return '`chunker` sizes must grow: minSize < avgSize < maxSize';
  if ((ch.avgSize & (ch.avgSize - 1)) !== 0) return '`chunker.avgSize` is not a power of two';
  if (encrypted) {
    if (ch.gearSeed !== undefined) return '`chunker.gearSeed` is in the config of an encrypted repository (it belongs in the key files)';
  } else if (typeof ch.gearSeed !== 'string' || !/^[0-9a-f]{32,64}$/.test(ch.gearSeed)) return '`chunker.gearSeed` is not 32 to 64 hex digits';
  const co = c.compression;
  if (!co || typeof co !== 'object' || !['none', 'deflate', 'zstd'].includes(co.codec)) return '`compression.codec` is not "zstd", "deflate" or "none"';
  const [lo, hi] = LEVELS[co.codec];
  if (!isInt(co.level, lo, hi)) return `\`compression.level\` ${JSON.stringify(co.level)} is not an integer from ${lo} to ${hi} for ${co.codec}`;
  if (!isInt(c.packSize, 1, MAX_PACK_SIZE)) return `\`packSize\` ${JSON.stringify(c.packSize)} is not an integer from 1 to ${MAX_PACK_SIZE} (256 MiB)`;
  return undefined;
}
