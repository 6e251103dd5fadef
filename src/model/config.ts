// The repository config: the parameters every reader and writer must agree on. JSON, so a person
// can read it; written once by init and never changed in place.
import { SnapError } from '../core/errors.js';

export const FORMAT_VERSION = 1;
export type CodecName = 'none' | 'deflate' | 'zstd';

export interface ChunkerParams {
  algorithm: 'fastcdc-gear32-nc2';
  minSize: number;
  avgSize: number;
  maxSize: number;
  /** Hex seed for the per-repository gear table: chunk boundaries cannot be predicted from outside. */
  gearSeed: string;
}

export interface RepoConfig {
  format: 'snap-repository';
  version: number;
  id: string;
  created: string;
  hash: 'sha256';
  chunker: ChunkerParams;
  compression: { codec: CodecName; level: number };
  packSize: number;
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
  if (c.version !== FORMAT_VERSION) {
    throw new SnapError('SNAP_BAD_CONFIG', `the repository at ${where} has format version ${String(c.version)}; this snap reads version ${FORMAT_VERSION}`);
  }
  const ch = c.chunker;
  const ok =
    typeof c.id === 'string' && c.hash === 'sha256' && ch !== undefined && ch.algorithm === 'fastcdc-gear32-nc2' &&
    Number.isInteger(ch.minSize) && Number.isInteger(ch.avgSize) && Number.isInteger(ch.maxSize) &&
    ch.minSize >= 64 && ch.minSize < ch.avgSize && ch.avgSize < ch.maxSize && ch.maxSize <= 64 * 1024 * 1024 &&
    (ch.avgSize & (ch.avgSize - 1)) === 0 && typeof ch.gearSeed === 'string' && /^[0-9a-f]{32,64}$/.test(ch.gearSeed) &&
    c.compression !== undefined && ['none', 'deflate', 'zstd'].includes(c.compression.codec) &&
    Number.isInteger(c.packSize) && (c.packSize ?? 0) > 0;
  if (!ok) throw new SnapError('SNAP_BAD_CONFIG', `the config of the repository at ${where} is damaged (a field is missing or out of range)`);
  return c as RepoConfig;
}
