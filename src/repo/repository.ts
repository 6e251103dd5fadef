// A repository: a backend for the blobs, the config that fixes chunking and compression, the
// object store and the LevelDB index, composed. Opening checks the index and rebuilds it when it
// is missing or damaged; it always reconciles the snapshot list with storage (a cheap listing).
// A local repository keeps its index in its own folder (`index/`); a remote one (S3, SFTP: any
// Backend given as RepoOptions.remote) in a local cache folder, `<cacheRoot>/<repository id>/index`,
// which is brought up to date with the repository's pack listing on every open (docs/remote.md).
import { createHash, createHmac } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { SnapError, errnoCode, fromSystemError, isSnapError } from '../core/errors.js';
import { makeDirs } from '../core/durable.js';
import { displayPath, fsPath } from '../core/bytes.js';
import { randomHex, sha256, toHex } from '../core/ids.js';
import { hmacSha256 } from '../core/crypto.js';
import { EncryptedBackend } from '../backend/encrypted.js';
import { addKey, configDigest, configTampered, KEYS, keyName, newMasterKeys, type Unlocked, unlock } from './keys.js';
import { forgetKnown, type KnownRepo, readKnown, sameKdf, writeKnown } from './known.js';
import type { Clock } from '../core/clock.js';
import { AppendOnlyBackend, appendOnlyError } from '../backend/append-only.js';
import { systemClock } from '../core/clock.js';
import type { ProgressSink } from '../core/progress.js';
import type { Backend } from '../backend/backend.js';
import type { PackReadSpec } from '../store/thread-pack-reads.js';
import { RestoreSpool } from './spool.js';
import { LocalBackend } from '../backend/local.js';
import { type Changes, RecordingBackend } from '../backend/recording.js';
import { type RepoConfig, decodeConfig, encodeConfig, ENCRYPTED_FORMAT_VERSION, ENCRYPTION, FORMAT_VERSION, isEncrypted } from '../model/config.js';
import { decodeSnapshot, encodeSnapshot, type Snapshot, type StoredSnapshot } from '../model/snapshot.js';
import { type CheckedTree, type CountableTree, DECODED_MAX, type Tree, openTree, sketchTree } from '../model/tree.js';
import { type Gear, makeGear } from '../store/chunker.js';
import { type ObjectLocation, ObjectStore, type StoredRead, readObjectVia } from '../store/object-store.js';
import { PackReader, type PackReaderOptions } from '../store/pack-reader.js';
import { PLAIN } from '../store/object-codec.js';
import { packName, readPackHeader, packIdFromName } from '../store/pack.js';
import { LevelIndex, snapKeyTime } from '../index/level-index.js';
import { K_SNAP } from '../index/keys.js';
import { INDEX_FILE_ENTRIES, type IndexedPack, IndexFileWriter, encodeIndexFile, indexFileName, listIndexFiles, readIndexFile } from './index-files.js';
import { TaskPool } from '../core/pool.js';
import { checkRepositoryOwner, type OwnerPolicy } from './ownership.js';
import { objectLimits } from '../store/limits.js';
import type { HostInfo } from '../core/host.js';
import { type LockKind, RepoLock } from './lock.js';
import { makeReserve, RESERVE_BYTES, releaseReserveIfFull } from './reserve.js';
import { CONFIG, DATA, INDEX_DIR, SNAPSHOTS, snapshotIdFromName, snapshotName } from './layout.js';

// What ops see of the layers below, handed on here: ops import repo/, never backend/ or index/.
export { type Changes, noChanges } from '../backend/recording.js';
export type { ObjectType } from '../store/pack.js';
export { type ObjectLocation, type StoredRead, readObjectVia } from '../store/object-store.js';
export type { ObjectTable } from '../index/object-table.js';
export type { PackReader, PackReaderOptions } from '../store/pack-reader.js';
export { type CachedFile, type FileStamp, packCachedFiles, sameStamp } from '../index/files-cache.js';
export type { DirRecord } from '../index/level-index.js';

export interface RepoOptions {
  sink: ProgressSink;
  clock?: Clock;
  /** How long to wait for another process that holds the index. */
  lockWaitMs?: number;
  /** The storage under the repository directory; a LocalBackend unless given (tests wrap it to inject faults). */
  backend?: (root: string) => Backend;
  /** Wraps whatever storage the repository gets (tests inject faults this way). */
  wrap?: (b: Backend) => Backend;
  /** Filled with what this process adds to and removes from the storage (the CLI's operation log). */
  changes?: Changes;
  /** Append-only use: the backend is wrapped so nothing but lock files can be deleted or replaced. */
  appendOnly?: boolean;
  /** Stops waiting for another process's index (the CLI's Ctrl-C). */
  signal?: AbortSignal;
  /**
   * The repository lock to take (docs/format.md, "Locks"): after the config is read, before the
   * index is opened, so every snapshot complete when the lock is granted is seen, and an exclusive
   * command (gc) starts only once every other command has closed the index. Released by close().
   */
  lock?: { kind: LockKind; waitMs: number };
  /**
   * The command only reads the repository (list, restore, check...): when its index cannot be
   * opened because the disk is full, the index is rebuilt in memory instead of the command failing.
   */
  readOnly?: boolean;
  /**
   * The command frees space (forget, gc): on storage with less than the reserve's size free (a
   * local disk, an SFTP server's), the reserve is removed before the lock is taken
   * (repo/reserve.ts), so the command has the room it needs on a full disk.
   */
  freesSpace?: boolean;
  /** Who opens the repository: the command (recorded in locks, told to processes that share the index). */
  command?: string;
  /**
   * The host facts of the opening process (pid, names, liveness probe): recorded in locks and in
   * the shared index's owner record. Required by open and init; the CLI makes them (cli/host.ts).
   */
  host?: HostInfo;
  /** Who may open a local repository (repo/ownership.ts); unchecked when absent (in-process callers). */
  owner?: OwnerPolicy;
  /** A repository on remote storage: its backend, and where the local cache of its index goes. */
  remote?: RemoteStorage;
  /**
   * The password of an encrypted repository, asked for only when the repository is encrypted
   * (the CLI's password sources, cli/password.ts). Absent: opening an encrypted one fails.
   */
  password?: () => Promise<Buffer>;
  /**
   * Keys this process opened before (the UI opens the repository again after idle stretches):
   * used instead of asking again when they belong to this repository's config id.
   */
  opened?: { repoId: string; unlocked: Unlocked };
  /**
   * Where an encrypted repository keeps its LevelDB index: `<indexCache>/<repository id>`, outside
   * the repository (the index holds source paths and snapshot records in the clear).
   */
  indexCache?: string;
  /**
   * The folder where this machine remembers the encrypted repositories it opened (repo/known.ts):
   * a config that changed since, or that now says "plain", is refused. Unchecked when absent.
   */
  known?: string;
  /**
   * Why the caller expects an encrypted repository (a password was given for it explicitly): one
   * whose config says it is plain is then refused, not used in the clear.
   */
  expectEncrypted?: string;
  /** init only: create an encrypted repository (format 2) whose first key opens with this password. */
  encrypt?: { password: Buffer; scrypt?: { N: number; r: number; p: number } };
  /**
   * init only, on storage without an atomic create-if-absent: how long to wait after writing the
   * config before reading it back (INIT_SETTLE_MS; tests shorten it).
   */
  initSettleMs?: number;
}

/**
 * On storage that cannot create a file only if it is absent, two `snap init` at once can both find
 * the place empty and both write a config, the later one replacing the other. Each reads the config
 * back after this long: longer than a small PUT takes, so the other's write, begun before this one
 * wrote, has landed by then. The one whose config is not there gives up.
 */
export const INIT_SETTLE_MS = 3000;

/** A repository that is not a local folder (repo/storage.ts makes these from `s3:` and `sftp:` locations). */
export interface RemoteStorage {
  /** The repository's storage; closed with the repository. */
  backend: Backend;
  /** The cache folder of this user (`$XDG_CACHE_HOME/snap`): the index goes into `<cacheRoot>/<repository id>/index`. */
  cacheRoot: string;
  /** Run by init before anything is written: make the container (an S3 bucket) when missing. */
  prepare?: () => Promise<void>;
}

/** The cache folder of a remote repository's index: named by its id (hashed when the id is not a plain name). */
export function remoteCacheDir(cacheRoot: string, repoId: string): string {
  const name = /^[0-9A-Za-z_-]{1,128}$/.test(repoId) ? repoId : createHash('sha256').update(repoId).digest('hex');
  return path.join(cacheRoot, name);
}

/** Object ids of a repository: SHA-256 (format 1) or HMAC-SHA256 under the secret id key (format 2). */
export type IdHash = (data: Uint8Array) => Buffer;

export function idHashOf(unlocked: Unlocked | undefined): IdHash {
  if (!unlocked) return sha256;
  const key = unlocked.master.idKey;
  return (data) => hmacSha256(key, data);
}

/** IdHash for data that comes in pieces (`export --verify` reads a chunk back across archive reads): the same ids. */
export interface IdHashing {
  update(data: Uint8Array): unknown;
  digest(): Buffer;
}

export function idHashingOf(unlocked: Unlocked | undefined): () => IdHashing {
  if (!unlocked) return () => createHash('sha256');
  const key = unlocked.master.idKey;
  return () => createHmac('sha256', key);
}

/**
 * Full packs a backup writes at once to remote storage (ObjectStoreOptions.packWrites): against a
 * local radosgw 3 took 5 % off a first backup against 2 (8.25 s against 8.67 s), 4 no more
 * (docs/performance.md, "Chunk ids on the compression threads"); each costs a pack buffer.
 */
const REMOTE_PACK_WRITES = 3;

function storage(abs: string, o: RepoOptions): Backend {
  const inner: Backend = o.remote ? o.remote.backend : o.backend ? o.backend(abs) : new LocalBackend(abs, { directWrites: true });
  const wrapped = o.wrap ? o.wrap(inner) : inner;
  const b = o.changes ? new RecordingBackend(wrapped, o.changes) : wrapped;
  return o.appendOnly && !b.appendOnly ? new AppendOnlyBackend(b) : b;
}

/**
 * The index folder of an encrypted repository: in the local cache, never in the repository. Named
 * by the repository's id and its location: two copies of one repository (a mirror, a restored
 * copy) have the same id but not the same objects, and must never share an index.
 */
function encryptedIndexDir(o: RepoOptions, repoId: string, abs: string): string {
  if (!o.indexCache) throw new SnapError('SNAP_INTERNAL', 'an encrypted repository was opened without a folder for its index');
  return path.join(o.indexCache, `${repoId}-${toHex(sha256(Buffer.from(abs))).slice(0, 16)}`, INDEX_DIR);
}

export const DEFAULT_CHUNKER = { minSize: 512 * 1024, avgSize: 1024 * 1024, maxSize: 8 * 1024 * 1024 };
export const DEFAULT_PACK_SIZE = 16 * 1024 * 1024;
/** A config is a few hundred bytes; one larger than this is not read. */
const MAX_CONFIG_BYTES = 64 * 1024;
/** Pack headers read at once when the index is rebuilt or catches up (each a ranged read). */
const HEADER_READS = 8;
/**
 * Bytes of trees the tree cache holds at most (trees are views over their bytes, tree.ts); a
 * larger tree is not cached, so the cache never holds more than this beside the trees in use.
 */
const TREE_CACHE_BYTES = 32 * 1024 * 1024;
/** Large trees remembered as checked (an id and a flag each). */
const CHECKED_LARGE = 4096;

/** A repository's storage as `Repository.openStorage` gives it. */
export interface OpenedStorage {
  /** The location as opened (an absolute path for a local repository). */
  location: string;
  /** The storage; for an encrypted repository it opens and seals every blob but the config and keys. */
  backend: Backend;
  config: RepoConfig;
  /** The unlocked keys of an encrypted repository. */
  unlocked?: Unlocked;
}

export class Repository {
  readonly objects: ObjectStore;
  readonly gear: Gear;
  /** How object ids are computed in this repository. */
  readonly hashId: IdHash;
  /** hashId in pieces. */
  readonly idHashing: () => IdHashing;
  /**
   * Where new packs are indexed: the local index and, when this repository has index files (its
   * LevelDB index is not in the repository folder: remote storage, encrypted), the next index file.
   */
  readonly indexFiles: IndexFileWriter;
  private treeCache = new Map<string, Tree>();
  private cachedBytes = 0;
  /** Large trees (more than DECODED_MAX entries) read and checked already, by id: opened again unchecked. */
  private checkedLarge = new Map<string, CheckedTree>();
  /** The repository lock taken for RepoOptions.lock, released by close(). */
  lock: RepoLock | undefined;
  /** Remote storage: the cache folder where restores spool packs (restoreSpool). */
  private spoolAt: string | undefined;

  private constructor(
    /** The repository's folder, or the canonical text of a remote location (`s3:...`, `sftp:...`). */
    readonly root: string,
    /** The repository's folder when it is a local one; undefined for remote storage. */
    readonly localRoot: string | undefined,
    readonly backend: Backend,
    readonly config: RepoConfig,
    readonly index: LevelIndex,
    readonly sink: ProgressSink,
    readonly clock: Clock,
    /** The opening process's host facts (pid, liveness probe): what names its spools and a restore's temporary entries. */
    readonly host: HostInfo,
    /** The master keys of an encrypted repository and the key file that opened them. */
    readonly unlocked?: Unlocked,
  ) {
    this.gear = makeGear(unlocked ? { ...config.chunker, gearSeed: unlocked.master.gearSeed } : config.chunker);
    this.hashId = idHashOf(unlocked);
    this.idHashing = idHashingOf(unlocked);
    this.indexFiles = new IndexFileWriter(backend, index, localRoot === undefined || unlocked !== undefined);
    this.objects = new ObjectStore(backend, this.indexFiles, {
      codec: config.compression.codec,
      level: config.compression.level,
      packSize: config.packSize,
      // Plain data: worker threads (restore's writers) get a copy of it.
      codecContext: unlocked ? { idKey: Uint8Array.from(unlocked.master.idKey) } : PLAIN,
      sealing: backend instanceof EncryptedBackend ? backend.sealing() : undefined,
      // Remote storage: two uploads at once (a PUT of 16 MiB waits on the network and the server);
      // measured against radosgw in docs/performance.md, "Packs finished on the compression threads".
      packWrites: localRoot === undefined ? REMOTE_PACK_WRITES : undefined,
    });
  }

  get encrypted(): boolean {
    return this.unlocked !== undefined;
  }
  /** Append-only use: the storage cannot delete (a capability of the backend, or --append-only). */
  get appendOnly(): boolean {
    return this.backend.appendOnly === true;
  }

  /** Commands that delete call this before they change anything, so they refuse up front. */
  assertMayDelete(doing: string): void {
    if (this.appendOnly) throw appendOnlyError(doing);
  }


  /** Whether `root` is missing or an empty directory: a place where `init` may create a repository. */
  static async isEmptyOrMissing(root: string, remote?: RemoteStorage): Promise<boolean> {
    if (remote) return (await remoteEntries(remote.backend, true)) === 'none';
    const entries = await fsp.readdir(fsPath(path.resolve(root))).catch((e: unknown) => (errnoCode(e) === 'ENOENT' ? [] : undefined));
    return entries !== undefined && entries.length === 0;
  }

  /** Create a new repository in an empty or missing directory. */
  static async init(root: string, o: RepoOptions & { host: HostInfo }, overrides: Partial<RepoConfig> = {}): Promise<Repository> {
    const abs = o.remote ? root : path.resolve(root);
    const shown = displayPath(abs);
    if (o.remote) {
      await o.remote.prepare?.();
      const found = await remoteEntries(o.remote.backend, true);
      if (found === 'config') throw new SnapError('SNAP_REPO_EXISTS', `a repository already exists at ${shown}`);
      if (found === 'other') throw new SnapError('SNAP_REPO_EXISTS', `${shown} is not empty; choose an empty or new place for a repository`);
    } else {
      const existing = await fsp.readdir(fsPath(abs)).catch(() => [] as string[]);
      if (existing.includes(CONFIG)) throw new SnapError('SNAP_REPO_EXISTS', `a repository already exists at ${shown}`);
      if (existing.length > 0) throw new SnapError('SNAP_REPO_EXISTS', `${shown} is not empty; choose an empty or new directory for a repository`);
      await makeDirs(abs, 0o700).catch((e: unknown) => {
        throw fromSystemError(e, `making the repository folder ${shown}`);
      });
      await fsp.chmod(fsPath(abs), 0o700);
    }
    const clock = o.clock ?? systemClock;
    const id = randomHex(16);
    const created = clock.now().toISOString();
    const config: RepoConfig = o.encrypt
      ? {
          format: 'snap-repository',
          version: ENCRYPTED_FORMAT_VERSION,
          id,
          created,
          hash: 'hmac-sha256',
          chunker: { algorithm: 'fastcdc-gear32-nc2', ...DEFAULT_CHUNKER },
          compression: { codec: 'zstd', level: 3 },
          packSize: DEFAULT_PACK_SIZE,
          encryption: ENCRYPTION,
          ...overrides,
        }
      : {
          format: 'snap-repository',
          version: FORMAT_VERSION,
          id,
          created,
          hash: 'sha256',
          chunker: { algorithm: 'fastcdc-gear32-nc2', ...DEFAULT_CHUNKER, gearSeed: randomHex(32) },
          compression: { codec: 'zstd', level: 3 },
          packSize: DEFAULT_PACK_SIZE,
          ...overrides,
        };
    let backend = storage(abs, o);
    const raw = backend;
    let unlocked: Unlocked | undefined;
    const configBytes = encodeConfig(config);
    const digest = configDigest(configBytes);
    if (o.encrypt) {
      // The key file first: a config without one could never be opened. It vouches for the
      // config's bytes (their SHA-256 is sealed in it): docs/format.md, "Authenticated config".
      const master = newMasterKeys();
      const keyId = await addKey(backend, config.id, master, o.encrypt.password, { now: clock.now(), scrypt: o.encrypt.scrypt, config: digest });
      unlocked = { master, keyId, config: digest, authenticated: true };
      backend = new EncryptedBackend(backend, master);
    }
    // The key file of an init that lost the race for the config belongs to nothing: removed.
    const dropKey = async (): Promise<void> => {
      if (unlocked) await raw.delete(keyName(unlocked.keyId)).catch(() => {});
    };
    if (!(await backend.putIfAbsent(CONFIG, configBytes))) {
      await dropKey();
      throw new SnapError('SNAP_REPO_EXISTS', `a repository already exists at ${shown}`);
    }
    if (!(await raw.capabilities()).atomicPutIfAbsent) {
      // A racing init may have replaced this config (INIT_SETTLE_MS): the last writer's stands.
      await new Promise((r) => setTimeout(r, o.initSettleMs ?? INIT_SETTLE_MS));
      const now = await raw.get(CONFIG).catch(() => undefined);
      if (!now?.equals(configBytes)) {
        await dropKey();
        throw new SnapError(
          'SNAP_REPO_EXISTS',
          `another snap init made a repository at ${shown} at the same moment, and its config replaced this one's (the storage cannot create a file only if it is absent); this init made nothing: use that repository, or init elsewhere`,
        );
      }
    }
    // The reserve for a full disk (repo/reserve.ts), where the storage says there is room.
    await makeReserve(backend).catch(() => {});
    // A new repository at this location: what this machine knew of an earlier one there is void.
    if (o.known) {
      if (unlocked) await remember(o, abs, config, unlocked, undefined, clock.now());
      else await forgetKnown(o.known, abs).catch(() => {});
    }
    return Repository.openWith(abs, backend, config, { ...o, lockWaitMs: o.lockWaitMs ?? 0 }, true, unlocked);
  }

  static async open(root: string, o: RepoOptions & { host: HostInfo }): Promise<Repository> {
    const s = await Repository.openStorage(root, o);
    return Repository.openWith(s.location, s.backend, s.config, o, false, s.unlocked);
  }

  /**
   * The repository's storage with its config read and checked and, when encrypted, its keys
   * unlocked (the backend then opens and seals every blob), without taking the lock or opening
   * the index: what `open` does first, and all that readers and writers of `log/` need (`snap log`
   * and the operation log answer while another command holds the lock). The caller closes the
   * backend.
   */
  static async openStorage(root: string, o: RepoOptions): Promise<OpenedStorage> {
    const abs = o.remote ? root : path.resolve(root);
    const shown = displayPath(abs);
    if (!o.remote) {
      const st = await fsp.stat(fsPath(abs)).catch(() => undefined);
      if (!st) throw new SnapError('SNAP_NO_REPO', `no repository at ${shown} (run 'snap init --repo ${shown}' to create one)`);
      if (!st.isDirectory()) throw new SnapError('SNAP_NO_REPO', `no repository at ${shown}: it is not a directory`);
      if (o.owner) await checkRepositoryOwner(abs, path.join(abs, INDEX_DIR), o.owner);
    }
    const backend = storage(abs, o);
    let configBytes: Buffer;
    try {
      // A config is a few hundred bytes: a larger one (or a FIFO, a symlink to /dev/zero: the backend
      // refuses those) is not read into memory.
      const st = await backend.stat(CONFIG);
      if (st && st.size > MAX_CONFIG_BYTES) throw new SnapError('SNAP_BAD_CONFIG', `the config of the repository at ${shown} has ${st.size} bytes, far more than a config holds: the repository is damaged or crafted`);
      configBytes = await backend.get(CONFIG);
    } catch (e) {
      if (isSnapError(e, 'SNAP_CORRUPT')) throw new SnapError('SNAP_BAD_CONFIG', `the config of the repository at ${shown} cannot be read: ${e.message}`, { cause: e });
      if (isSnapError(e, 'SNAP_MISSING_OBJECT') && o.remote) {
        const found = await remoteEntries(backend, false).catch(() => 'none' as const);
        await backend.close().catch(() => {});
        if (found === 'other') throw new SnapError('SNAP_BAD_CONFIG', `the repository at ${shown} has lost its config file; it cannot be read without it`);
        throw new SnapError('SNAP_NO_REPO', `no repository at ${shown} (run 'snap init --repo ${shown}' to create one)`);
      }
      if (isSnapError(e, 'SNAP_MISSING_OBJECT')) {
        const entries = await fsp.readdir(fsPath(abs));
        const looksLikeRepo = entries.includes('data') || entries.includes('snapshots');
        if (looksLikeRepo) throw new SnapError('SNAP_BAD_CONFIG', `the repository at ${shown} has lost its config file; it cannot be read without it`);
        // init refuses a folder that holds anything: suggest it only where it would work.
        throw new SnapError(
          'SNAP_NO_REPO',
          entries.length === 0
            ? `no repository at ${shown} (run 'snap init --repo ${shown}' to create one)`
            : `no repository at ${shown}: the folder holds other files (give the folder of a repository, or a new or empty one to 'snap init')`,
        );
      }
      if (o.remote) await backend.close().catch(() => {});
      throw e;
    }
    let config: RepoConfig;
    try {
      config = decodeConfig(configBytes, abs);
    } catch (e) {
      if (o.remote) await backend.close().catch(() => {});
      throw e;
    }
    const digest = configDigest(configBytes);
    const known = o.known ? readKnown(o.known, abs) : undefined;
    if (!isEncrypted(config)) {
      try {
        await refusePlainClaim(backend, shown, known, o.expectEncrypted);
      } catch (e) {
        if (o.remote) await backend.close().catch(() => {});
        throw e;
      }
      return { location: abs, backend, config };
    }
    if (o.opened && o.opened.repoId === config.id) {
      if (o.opened.unlocked.config !== digest) {
        if (o.remote) await backend.close().catch(() => {});
        throw configTampered(shown, 'its bytes changed since this process opened the repository (a config never changes)');
      }
      return { location: abs, backend: new EncryptedBackend(backend, o.opened.unlocked.master), config, unlocked: o.opened.unlocked };
    }
    // The password is tried before anything else is read, locked or written; so is the config.
    let unlocked: Unlocked;
    try {
      // A config whose id this machine knows with other bytes was changed: a config never changes.
      if (known && known.record.id === config.id && known.record.config !== digest) {
        throw configTampered(shown, `its bytes differ from those this machine saw when it first opened the repository (${known.record.since}; recorded in ${known.file})`);
      }
      if (!o.password) throw new SnapError('SNAP_NO_PASSWORD', `the repository at ${shown} is encrypted and no password was given`);
      const password = await o.password();
      try {
        unlocked = await unlock(backend, config.id, password, { digest, where: shown });
      } catch (e) {
        // A changed id makes the key files of before configs were authenticated fail to open (their
        // associated data holds the config's id): say what this machine knows.
        if (isSnapError(e, 'SNAP_WRONG_PASSWORD') && known && known.record.id !== config.id) {
          throw configTampered(
            shown,
            `its id is ${config.id}, but the repository this machine opened here had id ${known.record.id} (recorded in ${known.file}), and the password opens no key file for the new id. ` +
              `If the password is right, the config's id was changed; if a new repository was made here, delete that file`,
          );
        }
        throw e;
      } finally {
        password.fill(0);
      }
      // A key file from before configs were authenticated vouches for nothing: the config is taken
      // as this machine first saw it, and refused once it differs (the check above, or here for a
      // record of another id: a new repository here needs a key file that vouches for its config).
      if (!unlocked.authenticated && known && known.record.config !== digest) {
        throw configTampered(shown, `its bytes differ from those this machine saw when it first opened the repository here (recorded in ${known.file}), and its key file (written before snap authenticated configs) cannot tell whether the new ones are genuine`);
      }
    } catch (e) {
      // A remote backend's connection (an ssh session) would keep the process alive.
      if (o.remote) await backend.close().catch(() => {});
      throw e;
    }
    await remember(o, abs, config, unlocked, known?.record, (o.clock ?? systemClock).now());
    return { location: abs, backend: new EncryptedBackend(backend, unlocked.master), config, unlocked };
  }

  /**
   * Take the lock, then open the index shared with the other snap processes of this repository
   * (index/shared-kv.ts): as its owner, rebuilding it first when it is incomplete or damaged, or
   * as a client of the process that owns it. Then the snapshot list is reconciled with storage.
   */
  private static async openWith(abs: string, backend: Backend, config: RepoConfig, o: RepoOptions, created = false, unlocked?: Unlocked): Promise<Repository> {
    const clock = o.clock ?? systemClock;
    const host = o.host;
    if (!host) throw new SnapError('SNAP_INTERNAL', 'a repository is opened with the host facts of its process (RepoOptions.host)');
    const command = o.command ?? 'snap';
    let lock: RepoLock | undefined;
    // A command that frees space, on a full disk: the reserve goes first (repo/reserve.ts), said once.
    if (o.freesSpace && !o.appendOnly && !backend.appendOnly && (await releaseReserveIfFull(backend))) {
      o.sink.info?.(`the disk of ${displayPath(abs)} is full: its reserve (${RESERVE_BYTES / 1024 / 1024} MiB kept for this) was removed so that this command can run; 'snap gc' writes it again once there is room`);
    }
    if (o.lock) {
      try {
        lock = await RepoLock.acquire(backend, { kind: o.lock.kind, waitMs: o.lock.waitMs, command, host, clock, sink: o.sink, signal: o.signal });
      } catch (e) {
        // A full disk has no room for a lock file either, and a read-only one (a backup disk
        // mounted read-only, a copy on read-only media) takes none: a command that only reads goes
        // on without one. What it risks is a gc deleting a pack it reads: a failed read, named.
        if (o.readOnly && o.lock.kind === 'shared' && isSnapError(e, 'SNAP_NO_SPACE')) {
          o.sink.info?.(`no space left for a lock file in ${displayPath(abs)}: reading the repository without a lock (a gc at the same time could make this command fail)`);
        } else if (o.readOnly && o.lock.kind === 'shared' && isSnapError(e, 'SNAP_READ_ONLY')) {
          o.sink.info?.(`the repository at ${displayPath(abs)} is on a read-only file system: reading it without a lock`);
        } else {
          if (o.remote) await backend.close().catch(() => {}); // an ssh session would outlive the command
          throw e;
        }
      }
    }
    let repo: Repository | undefined;
    const localRoot = o.remote ? undefined : abs;
    /** Whether this process became the index's owner (and caught up while preparing it). */
    let prepared = false;
    // Said once: a damaged index found at open is rebuilt by prepareIndex, which need not say it again.
    let damageTold = false;
    /** A cache folder that cannot be made (full, read-only), for a command that only reads: the index goes in memory. */
    let noCacheFolder: unknown;
    try {
      let indexDir = unlocked ? encryptedIndexDir(o, config.id, abs) : path.join(abs, INDEX_DIR);
      if (o.remote) {
        // The index of a remote repository: in this user's cache folder, never on the remote.
        const cacheDir = remoteCacheDir(o.remote.cacheRoot, config.id);
        indexDir = path.join(cacheDir, INDEX_DIR);
        try {
          await makeDirs(cacheDir, 0o700);
        } catch (e) {
          const err = fromSystemError(e, `making the cache folder ${displayPath(cacheDir)} of the repository index`);
          if (!o.readOnly || !(isSnapError(err, 'SNAP_NO_SPACE') || isSnapError(err, 'SNAP_READ_ONLY'))) throw err;
          noCacheFolder = err;
        }
        if (o.owner && noCacheFolder === undefined) await checkRepositoryOwner(cacheDir, indexDir, o.owner);
      }
      const opts = {
        repoId: config.id,
        waitMs: o.lockWaitMs ?? 60_000,
        sink: o.sink,
        signal: o.signal,
        limits: objectLimits(config.chunker.maxSize),
        owner: { pid: host.pid, host: host.hostname, command },
        prepare: (index: LevelIndex) => {
          prepared = true;
          return (repo ?? new Repository(abs, localRoot, backend, config, index, o.sink, clock, host, unlocked)).prepareIndex(created, damageTold);
        },
      };
      const openIndex = async (): Promise<LevelIndex> => {
        try {
          return await LevelIndex.openShared(indexDir, opts);
        } catch (e) {
          let why: string;
          // LevelDB itself could not open it (a damaged manifest): start over, owned by this process.
          if (isSnapError(e, 'SNAP_CORRUPT')) why = `damaged (${e.cause instanceof Error ? e.cause.message : 'cannot open'})`;
          // Files in this user's own index folder that this user cannot open: written by another
          // user (root, killed before it gave them back: index/kv.ts ownerOnly). Derived data: rebuilt.
          else if (isSnapError(e, 'SNAP_PERMISSION') && (await fsp.stat(fsPath(indexDir)).catch(() => undefined))?.uid === host.uid) why = 'not readable by this user (another user wrote files in it)';
          else throw e;
          o.sink.info?.(`the repository index is ${why}; rebuilding it from the repository`);
          damageTold = true;
          try {
            await LevelIndex.destroy(indexDir);
          } catch {
            throw e;
          }
          return await LevelIndex.openShared(indexDir, opts);
        }
      };
      let index: LevelIndex;
      let inMemory = false;
      try {
        if (noCacheFolder !== undefined) throw noCacheFolder;
        index = await openIndex();
      } catch (e) {
        // LevelDB writes when it opens (the log of the last writes becomes a table): on a full disk
        // a command that only reads goes on with the index rebuilt in memory, for this command only.
        if (!o.readOnly || !(isSnapError(e, 'SNAP_NO_SPACE') || isSnapError(e, 'SNAP_READ_ONLY'))) throw e;
        const why = isSnapError(e, 'SNAP_NO_SPACE') ? 'no space left on its disk' : 'its file system is read-only';
        o.sink.info?.(`the repository index at ${displayPath(indexDir)} cannot be opened: ${why}; reading the repository without it (the index is rebuilt in memory for this command)`);
        index = LevelIndex.inMemory(indexDir, opts.limits);
        inMemory = true;
      }
      repo = new Repository(abs, localRoot, backend, config, index, o.sink, clock, host, unlocked);
      repo.lock = lock;
      if (inMemory) await repo.prepareIndex(false, true);
      if (o.remote) repo.spoolAt = path.dirname(indexDir);
    } catch (e) {
      await lock?.release().catch(() => {});
      if (o.remote) await backend.close().catch(() => {});
      throw e;
    }
    try {
      await repo.reconcileSnapshots();
      // An encrypted repository's index is local to this host (it lives in the cache): packs other
      // hosts wrote or deleted since are taken in here, as snapshot records are above.
      if (unlocked && localRoot !== undefined) await repo.reconcilePacks();
      // A remote index catches up in prepareIndex when this process owns it. As the client of
      // another process (a backup running for hours), it catches up here: packs other hosts wrote
      // since that process opened it would otherwise be missing (a restore of their snapshots
      // failing, their data uploaded again).
      else if (localRoot === undefined && !prepared) await repo.catchUp();
    } catch (e) {
      if (!isSnapError(e, 'SNAP_CORRUPT')) {
        await repo.close();
        throw e;
      }
      // Damage LevelDB noticed only while reading (a table file): start the index over.
      try {
        o.sink.info?.(`the repository index is damaged (${e.message}); rebuilding it from the repository`);
        await repo.index.reset();
        await repo.autoRebuild();
      } catch (e2) {
        await repo.close();
        throw e2;
      }
    }
    return repo;
  }

  /**
   * Run by the process that becomes the index's owner, before it serves other processes: rebuild
   * the index when it is incomplete (a new index, an interrupted rebuild) or damaged.
   */
  private async prepareIndex(created: boolean, damageTold = false): Promise<void> {
    let complete: boolean;
    try {
      complete = await this.index.isComplete(this.config.id);
    } catch (e) {
      // A damaged table file lets LevelDB open but fails the first read: whatever the error, the
      // index is rebuilt rather than every command failing on it.
      if (isSnapError(e, 'SNAP_NO_SPACE') || isSnapError(e, 'SNAP_READ_ONLY') || isSnapError(e, 'SNAP_PERMISSION')) throw e;
      this.sink.info?.(`the repository index is damaged (${e instanceof Error ? e.message : String(e)}); rebuilding it from the repository`);
      await this.index.reset();
      complete = false;
      damageTold = true;
    }
    if (complete) {
      if (this.localRoot === undefined) await this.catchUp();
      return;
    }
    // A new repository's index is empty and complete once marked: nothing to say.
    if (!created && !damageTold) this.sink.info?.('the repository index is missing or incomplete; rebuilding it from the repository');
    try {
      await this.autoRebuild(created);
    } catch (e) {
      if (!isSnapError(e, 'SNAP_CORRUPT')) throw e;
      this.sink.info?.(`the repository index is damaged (${e.message}); rebuilding it from the repository`);
      await this.index.reset();
      await this.autoRebuild();
    }
  }

  /**
   * A remote repository's cached index meets the repository again: other clients may have added
   * packs (taken in from the index files not seen yet, and from the headers of packs no index file
   * covers: time proportional to what is new) and a gc elsewhere may have removed some (their
   * entries are dropped, so nothing is deduplicated against a deleted pack).
   * Runs after the repository lock is taken, so no gc runs between this listing and the command.
   */
  async catchUp(): Promise<{ added: number; removed: number }> {
    const known = new Set<string>();
    for await (const p of this.index.packs()) known.add(p.id);
    const stored = await this.storedPacks();
    const fresh = new Map([...stored].filter(([id]) => !known.has(id)));
    const r = await this.takeInPacks(fresh, stored, (packId, name, e) => {
      this.sink.warn?.({ code: e.code, path: name, message: `pack ${packId.slice(0, 12)} skipped: ${e.message}` });
    });
    // What is known but not stored is gone from the repository (a gc elsewhere).
    const gone = new Set([...known].filter((id) => !stored.has(id)));
    await this.forgetPacks(gone);
    if (r.added + gone.size > 0) {
      await this.index.sync();
      this.sink.info?.(`the local index caught up with the repository: ${r.added} new packs, ${gone.size} removed${r.fromIndexFiles > 0 ? ` (${r.fromIndexFiles} from index files, ${r.added - r.fromIndexFiles} from pack headers)` : ''}`);
    }
    return { added: r.added, removed: gone.size };
  }

  /** The packs in storage (`data/`) and their sizes. */
  private async storedPacks(signal?: AbortSignal): Promise<Map<string, number>> {
    const stored = new Map<string, number>();
    for await (const blob of this.backend.list(DATA)) {
      signal?.throwIfAborted();
      const packId = packIdFromName(blob.name);
      if (packId) stored.set(packId, blob.size);
    }
    return stored;
  }

  /**
   * Add packs in storage that the index lacks (`fresh`: id to stored size). First from the index
   * files this index has not taken in yet (a pack is taken from one only when the file lists the
   * size storage has), then one header read per pack left over: packs a backup wrote but crashed
   * before its index file, packs of a repository without index files (older snap versions, plain
   * local repositories), packs of a damaged index file. A damaged or unreadable index file is never
   * fatal: said as a notice (`snap check` reports it, `snap index rebuild` rewrites it).
   * `onSkip` is told of a pack whose header is damaged or that vanished; other failures throw.
   * `stored` is the whole listing of `data/`: an index file naming a pack it lacks (written after
   * the listing, with a pack the listing missed; or naming a pack a gc deleted) is not noted as
   * taken in, so a later catch-up reads it again rather than that pack's header.
   */
  private async takeInPacks(
    fresh: Map<string, number>,
    stored: Map<string, number>,
    onSkip: (packId: string, name: string, e: SnapError) => void,
    o: { indexFiles?: boolean; signal?: AbortSignal } = {},
  ): Promise<{ added: number; objects: number; fromIndexFiles: number }> {
    let added = 0;
    let objects = 0;
    let fromIndexFiles = 0;
    if (fresh.size > 0 && o.indexFiles !== false) {
      const pool = new TaskPool(HEADER_READS);
      const take = async (fileId: string): Promise<void> => {
        let packs: IndexedPack[];
        try {
          packs = await readIndexFile(this.backend, fileId);
        } catch (e) {
          if (!isSnapError(e, 'SNAP_CORRUPT') && !isSnapError(e, 'SNAP_MISSING_OBJECT')) throw e;
          this.sink.info?.(`${e.message}; the packs it lists are read from their headers instead ('snap check' reports it, 'snap index rebuild' rewrites it)`);
          return;
        }
        let complete = true;
        const batch: IndexedPack[] = [];
        let batchEntries = 0;
        const write = async (): Promise<void> => {
          const b = batch.splice(0);
          batchEntries = 0;
          await this.index.addPacks(b);
        };
        for (const p of packs) {
          if (!stored.has(p.id)) complete = false;
          if (fresh.get(p.id) !== p.size) continue; // known already, gone, or not what storage holds
          fresh.delete(p.id);
          batch.push(p);
          batchEntries += p.entries.length + 1;
          added++;
          fromIndexFiles++;
          objects += p.entries.length;
          if (batchEntries >= 10_000) await write();
        }
        await write();
        if (complete) await this.index.markIndexFileSeen(fileId);
      };
      try {
        for (const fileId of await listIndexFiles(this.backend)) {
          o.signal?.throwIfAborted();
          if (fresh.size === 0) break;
          if (await this.index.isIndexFileSeen(fileId)) continue;
          await pool.run(() => take(fileId));
        }
      } catch (e) {
        await pool.drain().catch(() => {});
        throw e;
      }
      await pool.drain();
    }
    // Headers are read a few at a time: on remote storage each is a round trip or two.
    const pool = new TaskPool(HEADER_READS);
    try {
      for (const [packId, size] of fresh) {
        // Stopped: a rebuild leaves the index marked incomplete, so the next open rebuilds it.
        o.signal?.throwIfAborted();
        await pool.run(async () => {
          try {
            const entries = await readPackHeader(this.backend, packId);
            await this.index.addPack(packId, size, entries);
            added++;
            objects += entries.length;
          } catch (e) {
            // A damaged table is skipped (and reported); a failed read aborts, which leaves a rebuilt
            // index marked incomplete so the next open rebuilds it again rather than losing a pack.
            if (!isSnapError(e, 'SNAP_CORRUPT') && !isSnapError(e, 'SNAP_MISSING_OBJECT')) throw e;
            onSkip(packId, packName(packId), e);
          }
        });
      }
    } catch (e) {
      await pool.drain().catch(() => {}); // no header read is left running
      throw e;
    }
    await pool.drain();
    return { added, objects, fromIndexFiles };
  }

  /**
   * Replace the repository's index files by new ones listing every pack in storage as the local
   * index has it (sorted, so the same packs give the same files): written first, then the old ones
   * are deleted. Run by gc (compaction), `index rebuild` and `repair`, under the exclusive lock, on
   * a complete index. A crash between leaves both, which lists some packs twice: harmless.
   * Memory: the entries of every pack at once (as restic holds its whole index).
   */
  async rewriteIndexFiles(beforeDelete?: () => void | Promise<void>): Promise<{ written: number; removed: number }> {
    if (!this.indexFiles.enabled) return { written: 0, removed: 0 };
    await this.indexFiles.flush();
    const old = await listIndexFiles(this.backend);
    const stored = await this.storedPacks();
    const packs = new Map<string, IndexedPack>();
    for await (const p of this.index.packs()) {
      const size = stored.get(p.id);
      if (size !== undefined) packs.set(p.id, { id: p.id, size, entries: [] });
    }
    for await (const [id, loc] of this.index.objects()) {
      packs.get(loc.pack)?.entries.push({ id, type: loc.type, offset: loc.offset, length: loc.length, rawLength: loc.rawLength, codec: loc.codec });
    }
    const written = new Set<string>();
    let batch: IndexedPack[] = [];
    let n = 0;
    const write = async (): Promise<void> => {
      const { id, bytes } = encodeIndexFile(batch);
      await this.backend.put(indexFileName(id), bytes);
      await this.index.markIndexFileSeen(id);
      written.add(id);
      batch = [];
      n = 0;
    };
    for (const p of [...packs.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) {
      batch.push(p);
      n += p.entries.length;
      if (n >= INDEX_FILE_ENTRIES) await write();
    }
    if (batch.length > 0) await write();
    let removed = 0;
    const stale = old.filter((id) => !written.has(id));
    if (stale.length > 0 && !this.appendOnly) {
      await beforeDelete?.();
      for (const id of stale) {
        await this.backend.delete(indexFileName(id));
        removed++;
      }
    }
    return { written: written.size, removed };
  }

  /** Close the index (another process may take it over), then release the lock. */
  async close(): Promise<void> {
    try {
      // Packs written since the last index file (a command that wrote no snapshot record: gc,
      // repair, a failed backup) get theirs; if that fails, their headers still describe them.
      if (this.indexFiles.hasPending) {
        await this.indexFiles.flush().catch((e: unknown) => {
          this.sink.info?.(`the index file of the last packs written was not written (${e instanceof Error ? e.message : String(e)}); other clients read those packs' headers instead`);
        });
      }
      await this.index.close();
    } finally {
      try {
        await this.lock?.release();
      } finally {
        await this.backend.close();
      }
    }
  }

  /**
   * Rebuild every derived record of the index from the repository: the packs from the index files
   * and the headers of the packs they do not cover, or with `fromPacks` from every pack header
   * (`snap index rebuild`, `snap repair`), and the snapshot records.
   */
  async rebuildIndex(signal?: AbortSignal, o: { fromPacks?: boolean } = {}): Promise<{ packs: number; objects: number; snapshots: number; problems: string[]; fromIndexFiles: number }> {
    const problems: string[] = [];
    try {
      await this.index.setMeta('complete', 'rebuilding', true);
      await this.index.clear();
    } catch (e) {
      if (!isSnapError(e, 'SNAP_CORRUPT') && !isSnapError(e, 'SNAP_IO')) throw e;
      await this.index.reset(); // too damaged to clear
      await this.index.setMeta('complete', 'rebuilding', true);
    }
    this.treeCache.clear();
    this.cachedBytes = 0;
    const found: string[] = [];
    const stored = await this.storedPacks(signal);
    const r = await this.takeInPacks(new Map(stored), stored, (packId, name, e) => {
      const msg = `pack ${packId.slice(0, 12)} skipped: ${e.message}`;
      found.push(msg);
      this.sink.warn?.({ code: e.code, path: name, message: msg });
    }, { indexFiles: !o.fromPacks, signal });
    const packs = r.added;
    const objects = r.objects;
    problems.push(...found.sort());
    const snaps = await this.reconcileSnapshots();
    await this.index.markComplete(this.config.id);
    return { packs, objects, snapshots: snaps.total, problems, fromIndexFiles: r.fromIndexFiles };
  }

  /** A rebuild the user did not ask for: said as a notice (`snap index rebuild` prints its own result). */
  private async autoRebuild(quiet = false): Promise<void> {
    const r = await this.rebuildIndex();
    if (!quiet || r.packs + r.snapshots > 0) this.sink.info?.(`index rebuilt: ${r.packs} packs, ${r.objects} objects, ${r.snapshots} snapshots${r.fromIndexFiles > 0 ? ` (${r.fromIndexFiles} packs from index files, ${r.packs - r.fromIndexFiles} from pack headers)` : ''}`);
  }

  /**
   * Make the index's packs equal to the packs in storage: take in every pack it does not know
   * (from index files, else its header), forget every pack that is gone. For an index that is not the only one (an encrypted
   * repository's, kept per host in the cache): another host's backups add packs and its gc deletes
   * them. A listing of data/, the new index files, and one header read per new pack they do not cover.
   */
  async reconcilePacks(): Promise<{ added: number; removed: number }> {
    const known = new Set<string>();
    for await (const p of this.index.packs()) known.add(p.id);
    const stored = await this.storedPacks();
    const fresh = new Map([...stored].filter(([id]) => !known.has(id)));
    const { added } = await this.takeInPacks(fresh, stored, (packId, _name, e) => {
      // Said as a notice, not a warning: it would come with every command until 'snap repair'.
      this.sink.info?.(`pack ${packId.slice(0, 12)} left out of the index: ${e.message} ('snap check --read-data' reports it, 'snap repair' moves it aside)`);
    });
    const gone = new Set([...known].filter((id) => !stored.has(id)));
    await this.forgetPacks(gone);
    if (added > 0 || gone.size > 0) await this.index.sync();
    return { added, removed: gone.size };
  }

  /**
   * Packs a gc elsewhere deleted: their entries leave the index, and so do the files-cache entries
   * that name one of their objects, as gc drops them in its own index. Otherwise this host's next
   * backup trusts such an entry and saves a snapshot naming deleted data. Objects that gc copied
   * into new packs were taken in before this (under the new pack): they are not removed here.
   */
  private async forgetPacks(gone: Set<string>): Promise<void> {
    if (gone.size === 0) return;
    const removed = new Set<string>();
    await this.index.removePacks(gone, (id) => removed.add(id.toString('latin1')));
    if (removed.size > 0) await this.index.pruneFilesCache((id) => !removed.has(id.toString('latin1')));
  }

  /** Make the index's snapshot list equal to the snapshot records in storage. */
  async reconcileSnapshots(): Promise<{ added: number; removed: number; total: number }> {
    const { ids: inIndex, strays } = await this.index.snapshotEntries();
    const inStorage = new Set<string>();
    let added = 0;
    let removed = 0;
    for await (const blob of this.backend.list(SNAPSHOTS)) {
      const id = snapshotIdFromName(blob.name);
      if (!id) continue;
      inStorage.add(id);
      if (inIndex.has(id)) continue;
      try {
        const bytes = await this.backend.get(blob.name);
        const snap = decodeSnapshot(bytes, id);
        // An entry of this id under another time (a damaged key) would list it twice.
        await this.index.removeKeys((strays.get(id) ?? []).filter((k) => k[0] === K_SNAP && snapKeyTime(k) !== snap.time));
        strays.delete(id);
        await this.index.putSnapshot(snap, bytes);
        added++;
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        this.sink.warn?.({
          code: isSnapError(e) ? e.code : 'SNAP_IO',
          path: blob.name,
          message: `snapshot ${id.slice(0, 8)} is left out, its record is unreadable (${why}); 'snap check' reports it, 'snap repair' moves it aside`,
        });
      }
    }
    for (const id of inIndex) {
      if (!inStorage.has(id)) {
        await this.index.removeSnapshot(id);
        removed++;
      }
    }
    // Half entries of snapshots not in storage (or whose record cannot be read): nothing to keep.
    await this.index.removeKeys([...strays.values()].flat());
    return { added, removed, total: inStorage.size };
  }

  /**
   * Write a snapshot record. Everything it references is flushed first: packs durable, then their
   * index entries (the index file in the repository, the local index synced), then the record
   * (docs/format.md, "Write order").
   */
  async saveSnapshot(s: Snapshot): Promise<StoredSnapshot> {
    await this.objects.flush();
    await this.indexFiles.flush();
    await this.index.sync();
    const { id, bytes } = encodeSnapshot(s);
    await this.backend.put(snapshotName(id), bytes);
    const stored = { ...s, id };
    await this.index.putSnapshot(stored, bytes);
    return stored;
  }

  /**
   * A reader of stored objects in pack order for one command (restore): whole packs fetched ahead
   * where most of them is wanted, merged ranges otherwise, bounded by `o.budgetBytes`
   * (store/pack-reader.ts). Objects read through it are decoded and verified with readObjectVia.
   */
  /**
   * How a worker thread reads this repository's blobs itself (Backend.threadReads): a local
   * repository whose storage allows it; undefined otherwise (reads are then made here).
   */
  threadReads(): PackReadSpec | undefined {
    return this.localRoot === undefined ? undefined : this.backend.threadReads?.();
  }

  /**
   * Write the repository's reserve for a full disk again when it is missing and there is room
   * (repo/reserve.ts); gc calls it at its end. 'unknown' on storage that cannot say its free space.
   */
  async ensureReserve(): Promise<'there' | 'made' | 'no-room' | 'unknown'> {
    return makeReserve(this.backend);
  }

  /**
   * A spool for a restore from remote storage (repo/spool.ts), in this repository's cache folder;
   * undefined for a local repository (its packs are read where they are: threadReads).
   */
  restoreSpool(): RestoreSpool | undefined {
    if (!this.spoolAt) return undefined;
    try {
      return RestoreSpool.create(this.spoolAt, this.host, this.unlocked ? { dataKey: this.unlocked.master.dataKey } : undefined);
    } catch (e) {
      // A cache folder that takes no spool: the restore holds what it fetches in memory, as before.
      this.sink.info?.(`no spool for this restore in ${displayPath(this.spoolAt)} (${e instanceof Error ? e.message : String(e)}): packs are held in memory`);
      return undefined;
    }
  }

  packReader(o: PackReaderOptions): PackReader {
    return new PackReader(this.backend, o);
  }

  /**
   * Remove a snapshot record: the record in storage first, then its index entry. A crash between
   * the two leaves an index entry without a record, which the next open reconciles away.
   */
  async removeSnapshot(id: string): Promise<void> {
    await this.backend.delete(snapshotName(id));
    await this.index.removeSnapshot(id);
  }

  async listSnapshots(): Promise<StoredSnapshot[]> {
    try {
      return await this.indexedSnapshots();
    } catch (e) {
      if (!isSnapError(e, 'SNAP_CORRUPT')) throw e;
      // The index keeps derived copies of the records (LevelDB does not verify its blocks by
      // default): reload them from storage, and if the index is worse off than that, rebuild it.
      this.sink.info?.(`the index's copy of the snapshot list is damaged (${e.message}); reloading it from the repository`);
      try {
        await this.index.clearSnapshots();
        await this.reconcileSnapshots();
        return await this.indexedSnapshots();
      } catch (e2) {
        if (!isSnapError(e2, 'SNAP_CORRUPT')) throw e2;
        this.sink.info?.(`the repository index is damaged (${e2.message}); rebuilding it from the repository`);
        await this.index.reset();
        await this.autoRebuild();
        return await this.indexedSnapshots();
      }
    }
  }

  private async indexedSnapshots(): Promise<StoredSnapshot[]> {
    const out: StoredSnapshot[] = [];
    for await (const s of this.index.snapshots()) out.push(s);
    return out;
  }

  /**
   * A tree's entries: a view decoding each entry when asked (tree.ts), never all at once. `via`: the
   * stored bytes come from there (a restore's PackReader, which fetched the tree's pack ahead)
   * instead of a read of their own; they are decoded and verified the same way.
   */
  async readTree(id: Buffer, via?: StoredRead): Promise<Tree> {
    const hex = toHex(id);
    const hit = this.treeCache.get(hex);
    if (hit) return hit;
    // objects.get verifies the bytes against the id, so a large tree read again has the bytes that
    // passed its check the first time.
    return this.opened(hex, via ? await this.readTreeVia(id, hex, via) : await this.objects.get(id, 'tree'));
  }

  /** A tree's verified bytes opened (openTree), remembered as checked when large, and cached. */
  private opened(hex: string, bytes: Buffer): Tree {
    const tree = openTree(bytes, `tree ${hex.slice(0, 16)}`, this.checkedLarge.get(hex));
    if (tree.length > DECODED_MAX && !this.checkedLarge.has(hex)) {
      if (this.checkedLarge.size >= CHECKED_LARGE) this.checkedLarge.delete(this.checkedLarge.keys().next().value!);
      this.checkedLarge.set(hex, { hasDirs: tree.hasDirs });
    }
    // A small cache: ls/cat/restore walk the same few trees repeatedly. Bounded by tree count and
    // by bytes, so a few huge directories cannot pin hundreds of megabytes.
    const size = tree.heldBytes;
    if (size > TREE_CACHE_BYTES) return tree;
    while (this.treeCache.size >= 64 || (this.treeCache.size > 0 && this.cachedBytes + size > TREE_CACHE_BYTES)) {
      const oldest = this.treeCache.keys().next().value!;
      this.cachedBytes -= this.treeCache.get(oldest)!.heldBytes;
      this.treeCache.delete(oldest);
    }
    this.treeCache.set(hex, tree);
    this.cachedBytes += size;
    return tree;
  }

  /**
   * A tree for a count of a walk's expansion (model/tree.ts sketchTree): read and verified as
   * readTree reads it (through `via` as there), its entries not decoded; a tree in the cache, or of an encoding a sketch
   * does not take, as readTree gives it.
   */
  async readTreeSketch(id: Buffer, via?: StoredRead, located?: ObjectLocation): Promise<CountableTree> {
    const hex = toHex(id);
    const hit = this.treeCache.get(hex);
    if (hit) return hit;
    const bytes = via ? await this.readTreeVia(id, hex, via, located) : await this.objects.get(id, 'tree');
    return sketchTree(bytes, `tree ${hex.slice(0, 16)}`) ?? this.opened(hex, bytes);
  }

  /** ObjectStore.get of a tree, its stored bytes read through `via` (`located`: its index entry, when the caller looked it up already). */
  private async readTreeVia(id: Buffer, hex: string, via: StoredRead, located?: ObjectLocation): Promise<Buffer> {
    const loc = located ?? (await this.index.lookup(id));
    if (!loc) throw new SnapError('SNAP_MISSING_OBJECT', `object ${hex.slice(0, 16)} is not in the repository index`);
    if (loc.type !== 'tree') throw new SnapError('SNAP_CORRUPT', `object ${hex.slice(0, 16)} is a ${loc.type}, expected a tree`);
    return readObjectVia(via, id, loc, this.objects.ctx);
  }
}

/**
 * A config that says "plain" (format 1) where there are signs of an encrypted repository: refused,
 * so a storage host cannot make snap write backups in the clear by rewriting the config
 * (docs/format.md, "Authenticated config"). The signs: this machine opened an encrypted repository
 * here before; key files under keys/ (a plain repository has none); a password given for it.
 */
async function refusePlainClaim(backend: Backend, shown: string, known: { record: KnownRepo; file: string } | undefined, expectEncrypted: string | undefined): Promise<void> {
  const refuse = (why: string): SnapError =>
    new SnapError(
      'SNAP_BAD_CONFIG',
      `the config of the repository at ${shown} says it is a plain (unencrypted) repository, but ${why}: the config was changed by whoever holds the storage, ` +
        `or the repository was replaced. Refusing to use it in the clear; nothing was read or written`,
    );
  if (known && known.record.version === ENCRYPTED_FORMAT_VERSION) {
    throw refuse(`this machine opened an encrypted repository here (id ${known.record.id}, since ${known.record.since}; if you replaced it with a plain one yourself, delete ${known.file})`);
  }
  for await (const b of backend.list(KEYS)) {
    throw refuse(`it holds key files of an encrypted repository (${b.name})`);
  }
  if (expectEncrypted) throw refuse(`${expectEncrypted}: a password is for an encrypted repository`);
}

/** Record (or update) what this machine knows of an encrypted repository it opened (repo/known.ts). Best effort. */
async function remember(o: RepoOptions, location: string, config: RepoConfig, unlocked: Unlocked, before: KnownRepo | undefined, now: Date): Promise<void> {
  if (!o.known) return;
  const same = before?.id === config.id ? before : undefined; // the record of this repository, not another made here
  const kdf = unlocked.kdf ?? same?.kdf;
  // Rewritten for another key's derivation only: what a key file once vouched for stays said.
  const vouched = same?.config === unlocked.config && same.authenticated;
  if (same && same.config === unlocked.config && (same.authenticated || !unlocked.authenticated) && sameKdf(same.kdf, kdf)) return;
  const record = {
    location,
    id: config.id,
    version: config.version,
    config: unlocked.config,
    authenticated: unlocked.authenticated || vouched,
    since: same ? same.since : now.toISOString(),
    ...(kdf ? { kdf } : {}),
  };
  await writeKnown(o.known, record).catch((e: unknown) => {
    o.sink.info?.(`could not record the repository in ${o.known} (${e instanceof Error ? e.message : String(e)}); a changed config is still caught by its key file`);
  });
}

/**
 * What a remote location holds: 'none' (nothing, or a bucket that does not exist yet), 'config'
 * (a repository), or 'other' blobs. `anyName` counts every blob; else only a repository's folders.
 */
async function remoteEntries(backend: Backend, anyName: boolean): Promise<'none' | 'config' | 'other'> {
  try {
    if (await backend.exists(CONFIG)) return 'config';
    for (const prefix of anyName ? [''] : [DATA, SNAPSHOTS]) {
      for await (const b of backend.list(prefix)) if (b) return 'other';
    }
    return 'none';
  } catch (e) {
    if (isSnapError(e, 'SNAP_NO_REPO')) return 'none';
    throw e;
  }
}
