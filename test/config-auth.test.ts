// The config of an encrypted repository is authenticated (docs/format.md, "Authenticated config";
// docs/security.md): whoever holds the storage cannot change a field of it, nor make it say
// "plain", without snap refusing the repository (SNAP_BAD_CONFIG) before any work. Real files, the
// CLI as built, a private cache per case (so what catches a change is the key file, unless the
// case is about what this machine remembers).
import { createCipheriv, createDecipheriv, createHash, randomBytes, scryptSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snap, tmpDir, type RunResult } from './helpers/cli.js';
import { TestSshd, sshdMissing } from './helpers/sshd.js';

const PASSWORD = 'config-auth-Password-5521';
const VECTOR = path.join(import.meta.dirname, 'vectors', 'v2', 'repo-unauthenticated');
const VECTOR_PASSWORD = 'format-2-vector-password';

interface Config {
  version: number;
  id: string;
  created: string;
  hash: string;
  chunker: { algorithm: string; minSize: number; avgSize: number; maxSize: number; gearSeed?: string };
  compression: { codec: string; level: number };
  packSize: number;
  encryption?: unknown;
}

/** Runs snap on `repo` with a cheap KDF and the given cache folder; the password from SNAP_PASSWORD unless `noPassword`. */
function run(repo: string, cache: string, args: string[], o: { env?: Record<string, string>; noPassword?: boolean; password?: string } = {}): RunResult {
  const env: Record<string, string> = { XDG_CACHE_HOME: cache, SNAP_KDF_SCRYPT_N: '1024', SNAP_PASSWORD: o.password ?? PASSWORD, ...o.env };
  if (!o.noPassword) return snap(['--repo', repo, ...args], { env });
  const saved = process.env.SNAP_PASSWORD;
  delete process.env.SNAP_PASSWORD;
  delete env.SNAP_PASSWORD;
  try {
    return snap(['--repo', repo, ...args], { env });
  } finally {
    if (saved !== undefined) process.env.SNAP_PASSWORD = saved;
  }
}

function ok(r: RunResult): RunResult {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return r;
}

/** Every file under `dir` with the SHA-256 of its bytes: what "nothing was written" compares. */
function state(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

const readConfig = (repo: string): Config => JSON.parse(fs.readFileSync(path.join(repo, 'config'), 'utf8')) as Config;
const writeConfig = (repo: string, c: unknown): void => fs.writeFileSync(path.join(repo, 'config'), JSON.stringify(c, null, 2) + '\n');

/** The refusal every changed config gets: SNAP_BAD_CONFIG naming the config, exit 1, one line, no stack trace. */
function expectRefused(r: RunResult, what: RegExp = /config/): void {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr).toMatch(/\[SNAP_BAD_CONFIG\]\n$/);
  expect(r.stderr).toMatch(what);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stderr).not.toContain(PASSWORD);
}

/** An encrypted repository made by this snap, with one snapshot; a folder to copy for each case. */
function pristine(): { dir: string; repo: string; src: string } {
  const dir = tmpDir('snap-config-auth-');
  const repo = path.join(dir, 'repo');
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'a.txt'), 'some data\n'.repeat(1000));
  fs.writeFileSync(path.join(src, 'b.bin'), Buffer.alloc(100_000, 7));
  const cache = path.join(dir, 'cache');
  ok(run(repo, cache, ['init', '--encrypt']));
  ok(run(repo, cache, ['create', src]));
  return { dir, repo, src };
}

/** A copy of `from` in a new folder, with a new, empty cache folder. */
function copyOf(from: string): { repo: string; cache: string } {
  const dir = tmpDir('snap-config-auth-case-');
  const repo = path.join(dir, 'repo');
  fs.cpSync(from, repo, { recursive: true });
  return { repo, cache: path.join(dir, 'cache') };
}

describe('the config of an encrypted repository is authenticated', () => {
  const p = pristine();

  it('an untouched repository works; its key file names the repository; check says the config is authenticated', () => {
    const { repo, cache } = copyOf(p.repo);
    expect(ok(run(repo, cache, ['list'])).stdout).toContain('1 snapshot');
    const check = ok(run(repo, cache, ['--json', 'check', '--read-data']));
    expect(JSON.parse(check.stdout)).toMatchObject({ ok: true, config_authenticated: true });
    const keys = fs.readdirSync(path.join(repo, 'keys'));
    expect(keys).toHaveLength(1);
    const key = JSON.parse(fs.readFileSync(path.join(repo, 'keys', keys[0]!), 'utf8')) as { repo?: string };
    expect(key.repo).toBe(readConfig(repo).id);
    // Nothing secret in the clear: the config has no seed, the key file holds only the sealed keys.
    expect(readConfig(repo).chunker.gearSeed).toBeUndefined();
  });

  // Each change gives a valid config (it passes every range check): only authentication catches it.
  const changes: [string, (c: Config) => void][] = [
    ['chunker.minSize', (c) => void (c.chunker.minSize = 64 * 1024)],
    ['chunker.avgSize', (c) => void (c.chunker.avgSize = 2 * 1024 * 1024)],
    ['chunker.maxSize', (c) => void (c.chunker.maxSize = 2 * 1024 * 1024)],
    ['packSize (1 byte: one object per pack would show every object size)', (c) => void (c.packSize = 1)],
    ['compression.codec none', (c) => void (c.compression = { codec: 'none', level: 0 })],
    ['compression.level', (c) => void (c.compression.level = 19)],
    ['created', (c) => void (c.created = '2020-01-01T00:00:00.000Z')],
    ['id (another repository id: confuses caches)', (c) => void (c.id = '0123456789abcdef0123456789abcdef')],
  ];
  for (const [field, change] of changes) {
    it(`${field} changed: every command is refused with SNAP_BAD_CONFIG before any work, check included`, () => {
      const { repo, cache } = copyOf(p.repo);
      const c = readConfig(repo);
      change(c);
      writeConfig(repo, c);
      const before = state(repo);
      const r = run(repo, cache, ['create', p.src]);
      expectRefused(r, /the config of the encrypted repository at .* failed authentication/);
      if (field.startsWith('id')) expect(r.stderr).toMatch(/made for repository [0-9a-f]{32}/);
      // Nothing written: no pack, no snapshot, no lock, no log record, no index.
      expect(state(repo)).toEqual(before);
      expect(fs.existsSync(path.join(cache, 'snap', 'index'))).toBe(false);
      expectRefused(run(repo, cache, ['check', '--read-data']), /failed authentication/);
      expectRefused(run(repo, cache, ['log']), /failed authentication/);
      expect(state(repo)).toEqual(before);
    });
  }

  it('the same config reformatted (same values, other bytes) is refused: the bytes are authenticated', () => {
    const { repo, cache } = copyOf(p.repo);
    fs.writeFileSync(path.join(repo, 'config'), JSON.stringify(readConfig(repo)));
    expectRefused(run(repo, cache, ['list']), /failed authentication/);
  });

  it('a byte flipped at 12 seeded positions of the config: each refused with SNAP_BAD_CONFIG, nothing written', () => {
    const bytes = fs.readFileSync(path.join(p.repo, 'config'));
    let x = 12345;
    for (let i = 0; i < 12; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const at = x % bytes.length;
      const { repo, cache } = copyOf(p.repo);
      const flipped = Buffer.from(bytes);
      flipped[at] = flipped[at]! ^ (1 << (x >>> 29));
      fs.writeFileSync(path.join(repo, 'config'), flipped);
      const before = state(repo);
      const r = run(repo, cache, ['create', p.src]);
      // A flip may break the JSON or a field's range (refused as damaged) or leave a valid config
      // (refused as unauthenticated): either way SNAP_BAD_CONFIG, before any work.
      expectRefused(r);
      expect(state(repo), `flip at ${at}`).toEqual(before);
    }
  });

  it('"encrypted" flag: a config rewritten to say plain (format 1) is refused, not read or written in the clear', () => {
    const { repo, cache } = copyOf(p.repo);
    ok(run(repo, cache, ['list'])); // this machine has now opened it as encrypted
    const original = fs.readFileSync(path.join(repo, 'config'));
    const c = readConfig(repo);
    const plain = { ...c, version: 1, hash: 'sha256', chunker: { ...c.chunker, gearSeed: 'ab'.repeat(32) } };
    delete (plain as { encryption?: unknown }).encryption;
    writeConfig(repo, plain);
    const before = state(repo);
    const fresh = path.join(tmpDir('snap-config-auth-cache-'), 'cache');

    // Key files are still there: any client, without a password and without a record, refuses.
    let r = run(repo, fresh, ['create', p.src], { noPassword: true });
    expectRefused(r, /says it is a plain \(unencrypted\) repository, but it holds key files/);
    // `snap log` reads log/ without the index or the lock: it refuses the same way.
    expectRefused(run(repo, fresh, ['log'], { noPassword: true }), /says it is a plain \(unencrypted\) repository, but it holds key files/);
    expect(state(repo)).toEqual(before);
    expect(fs.existsSync(path.join(repo, 'index'))).toBe(false);

    // The key files deleted too: the machine that opened it before remembers it as encrypted.
    fs.rmSync(path.join(repo, 'keys'), { recursive: true });
    const withoutKeys = state(repo);
    r = run(repo, cache, ['create', p.src], { noPassword: true });
    expectRefused(r, /this machine opened an encrypted repository here/);
    expectRefused(run(repo, cache, ['check']), /plain/);
    expectRefused(run(repo, cache, ['log'], { noPassword: true }), /this machine opened an encrypted repository here/);
    // A client that has the password and says so (--password-file) refuses too.
    const pwFile = path.join(path.dirname(repo), 'pw');
    fs.writeFileSync(pwFile, PASSWORD + '\n');
    r = run(repo, fresh, ['--password-file', pwFile, 'create', p.src], { noPassword: true });
    expectRefused(r, /--password-file was given/);
    expect(state(repo)).toEqual(withoutKeys);
    expect(fs.existsSync(path.join(repo, 'index'))).toBe(false);

    // Put back as it was: it opens again.
    fs.writeFileSync(path.join(repo, 'config'), original);
    fs.cpSync(path.join(p.repo, 'keys'), path.join(repo, 'keys'), { recursive: true });
    expect(ok(run(repo, cache, ['list'])).stdout).toContain('1 snapshot');
  });

  it('a config version this snap does not know stays SNAP_BAD_CONFIG (unknown version), nothing written', () => {
    const { repo, cache } = copyOf(p.repo);
    writeConfig(repo, { ...readConfig(repo), version: 3 });
    const before = state(repo);
    expectRefused(run(repo, cache, ['create', p.src]), /format version 3/);
    expect(state(repo)).toEqual(before);
  });

  it('a key file of another repository (same password) planted first does not vouch for this config', () => {
    const other = pristine();
    const { repo, cache } = copyOf(p.repo);
    for (const k of fs.readdirSync(path.join(repo, 'keys'))) fs.rmSync(path.join(repo, 'keys', k));
    const [foreign] = fs.readdirSync(path.join(other.repo, 'keys'));
    fs.copyFileSync(path.join(other.repo, 'keys', foreign!), path.join(repo, 'keys', foreign!));
    expectRefused(run(repo, cache, ['list']), /made for repository/);
  });

  it('a new key (key add, key passwd) vouches for the config too', () => {
    const { repo, cache } = copyOf(p.repo);
    const newPw = path.join(path.dirname(repo), 'new-pw');
    fs.writeFileSync(newPw, 'the-second-password\n');
    ok(run(repo, cache, ['key', 'add', '--new-password-file', newPw]));
    const c = readConfig(repo);
    c.packSize = 4096;
    writeConfig(repo, c);
    const fresh = path.join(tmpDir('snap-config-auth-cache-'), 'cache');
    expectRefused(run(repo, fresh, ['list'], { password: 'the-second-password' }), /failed authentication/);
  });
});

describe('repositories made before configs were authenticated (format 2 vector of main 72875b3)', () => {
  it('opens, checks clean and restores; the machine remembers its config and refuses it changed; key passwd upgrades it', () => {
    const { repo, cache } = copyOf(VECTOR);
    const before = state(repo);
    const list = ok(run(repo, cache, ['list'], { password: VECTOR_PASSWORD }));
    expect(list.stdout).toContain('1bf6a6ed');
    const check = ok(run(repo, cache, ['check', '--read-data'], { password: VECTOR_PASSWORD }));
    expect(check.stdout).toContain('no damage found');
    expect(check.stdout).toMatch(/note: the config is not authenticated/);
    // Read-only commands left the repository as main wrote it.
    expect(state(repo)).toEqual(before);
    const target = tmpDir('snap-config-auth-restore-');
    ok(run(repo, cache, ['restore', 'latest', target], { password: VECTOR_PASSWORD }));
    expect(fs.readFileSync(path.join(target, 'tmp/snap-v2-vector/src/docs/hello.txt'), 'utf8')).toBe('hello, format 2\n');
    expect(createHash('sha256').update(fs.readFileSync(path.join(target, 'tmp/snap-v2-vector/src/random.bin'))).digest('hex')).toBe(
      'f1fab6f17f34ba9fa5f51566078df5294e9bdd55f47d32bc81baf5aabcdc8827',
    );

    // Changed after this machine first opened it: refused, with the record named.
    const original = fs.readFileSync(path.join(repo, 'config'));
    const c = readConfig(repo);
    c.packSize = 1;
    writeConfig(repo, c);
    expectRefused(run(repo, cache, ['create', target], { password: VECTOR_PASSWORD }), /differ from those this machine saw/);
    // Its id changed: its key file (associated data = the config's id) opens no more; the record says why.
    writeConfig(repo, { ...readConfig(repo), packSize: 16777216, id: 'ffffffffffffffffffffffffffffffff' });
    expectRefused(run(repo, cache, ['list'], { password: VECTOR_PASSWORD }), /its id is ffff.*had id f249bbb1/);
    fs.writeFileSync(path.join(repo, 'config'), original);

    // key passwd writes a key file that vouches for the config: then a machine that never saw the
    // repository refuses a changed config too.
    const newPw = path.join(path.dirname(repo), 'new-pw');
    fs.writeFileSync(newPw, 'upgraded-password\n');
    ok(run(repo, cache, ['key', 'passwd', '--new-password-file', newPw], { password: VECTOR_PASSWORD }));
    const check2 = ok(run(repo, cache, ['--json', 'check'], { password: 'upgraded-password' }));
    expect(JSON.parse(check2.stdout)).toMatchObject({ ok: true, config_authenticated: true });
    writeConfig(repo, { ...readConfig(repo), packSize: 1 });
    const fresh = path.join(tmpDir('snap-config-auth-cache-'), 'cache');
    expectRefused(run(repo, fresh, ['list'], { password: 'upgraded-password' }), /failed authentication/);
  });

  it('after key passwd with the same password, an old key file the password opens does not make a changed config pass', () => {
    const { repo, cache } = copyOf(VECTOR);
    const configId = readConfig(repo).id;
    const [oldKey] = fs.readdirSync(path.join(repo, 'keys'));
    const samePw = path.join(path.dirname(repo), 'same-pw');
    fs.writeFileSync(samePw, VECTOR_PASSWORD + '\n');
    ok(run(repo, cache, ['key', 'passwd', '--new-password-file', samePw], { password: VECTOR_PASSWORD }));
    expect(fs.readdirSync(path.join(repo, 'keys'))).not.toContain(oldKey);
    // The host kept an old key file of this password. Made here from the document (format.md, "Key
    // files") under the id 000...0, so that it is the first one a reader tries.
    const old = JSON.parse(fs.readFileSync(path.join(VECTOR, 'keys', oldKey!), 'utf8')) as { kdf: { N: number; r: number; p: number; salt: string }; nonce: string; sealed: string };
    const kek = scryptSync(VECTOR_PASSWORD, Buffer.from(old.kdf.salt, 'base64'), 32, { N: old.kdf.N, r: old.kdf.r, p: old.kdf.p, maxmem: 256 * 1024 * 1024 });
    const sealed = Buffer.from(old.sealed, 'base64');
    const open = createDecipheriv('aes-256-gcm', kek, Buffer.from(old.nonce, 'base64'));
    open.setAAD(Buffer.from(`snap-key v1 ${configId} ${oldKey}`));
    open.setAuthTag(sealed.subarray(sealed.length - 16));
    const payload = Buffer.concat([open.update(sealed.subarray(0, sealed.length - 16)), open.final()]);
    expect(Object.keys(JSON.parse(payload.toString()) as object).sort()).toEqual(['dataKey', 'gearSeed', 'idKey']); // no config digest
    const planted = '0'.repeat(32);
    const nonce = randomBytes(12);
    const seal = createCipheriv('aes-256-gcm', kek, nonce);
    seal.setAAD(Buffer.from(`snap-key v1 ${configId} ${planted}`));
    const body = Buffer.concat([seal.update(payload), seal.final(), seal.getAuthTag()]);
    fs.writeFileSync(path.join(repo, 'keys', planted), JSON.stringify({ ...old, nonce: nonce.toString('base64'), sealed: body.toString('base64') }, null, 2) + '\n');
    // Both key files open with the password; the one that vouches for the config is used.
    const fresh = path.join(tmpDir('snap-config-auth-cache-'), 'cache');
    expect(JSON.parse(ok(run(repo, fresh, ['--json', 'check'], { password: VECTOR_PASSWORD })).stdout)).toMatchObject({ ok: true, config_authenticated: true });
    // And so a changed config is refused, even on a machine that never saw the repository.
    writeConfig(repo, { ...readConfig(repo), compression: { codec: 'none', level: 0 } });
    const fresh2 = path.join(tmpDir('snap-config-auth-cache-'), 'cache');
    expectRefused(run(repo, fresh2, ['list'], { password: VECTOR_PASSWORD }), /failed authentication/);
  });
});

describe('plain repositories', () => {
  it('work as before: no keys, no record; a password given explicitly for one is refused, SNAP_PASSWORD is not', () => {
    const dir = tmpDir('snap-config-auth-plain-');
    const repo = path.join(dir, 'repo');
    const cache = path.join(dir, 'cache');
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f'), 'plain\n');
    ok(run(repo, cache, ['init'], { noPassword: true }));
    const config = fs.readFileSync(path.join(repo, 'config'));
    expect(readConfig(repo)).toMatchObject({ version: 1, hash: 'sha256' });
    ok(run(repo, cache, ['create', src], { noPassword: true }));
    ok(run(repo, cache, ['create', src])); // SNAP_PASSWORD is often set for every command
    expect(ok(run(repo, cache, ['check'], { noPassword: true })).stdout).toContain('no damage found');
    expect(fs.existsSync(path.join(repo, 'keys'))).toBe(false);
    expect(fs.existsSync(path.join(cache, 'snap', 'known'))).toBe(false);
    expect(fs.readFileSync(path.join(repo, 'config')).equals(config)).toBe(true);
    const pwFile = path.join(dir, 'pw');
    fs.writeFileSync(pwFile, 'x\n');
    expectRefused(run(repo, cache, ['--password-file', pwFile, 'list'], { noPassword: true }), /--password-file was given/);
  });

  it('init of a plain repository where this machine knew an encrypted one makes it forget that one', () => {
    const dir = tmpDir('snap-config-auth-reinit-');
    const repo = path.join(dir, 'repo');
    const cache = path.join(dir, 'cache');
    ok(run(repo, cache, ['init', '--encrypt']));
    expect(fs.readdirSync(path.join(cache, 'snap', 'known'))).toHaveLength(1);
    fs.rmSync(repo, { recursive: true });
    ok(run(repo, cache, ['init'], { noPassword: true }));
    expect(ok(run(repo, cache, ['list'], { noPassword: true })).stdout).toMatch(/no snapshots/);
  });
});

describe('on remote storage (SFTP, a real OpenSSH server)', () => {
  const missing = sshdMissing();
  let sshd: TestSshd | undefined;
  beforeAll(async () => {
    if (!missing) sshd = await TestSshd.start();
  }, 300_000);
  afterAll(async () => {
    await sshd?.close();
  });

  it('a changed packSize, and a config rewritten to say plain, are refused before any work', (ctx) => {
    if (!sshd) return ctx.skip();
    const dir = tmpDir('snap-config-auth-sftp-');
    const cache = path.join(dir, 'cache');
    const folder = path.join(sshd.dir, `config-auth-${path.basename(dir)}`);
    const repo = sshd.location(folder);
    const env = { SNAP_SSH_COMMAND: `ssh -F ${sshd.clientConfig()}` };
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f'), 'remote data\n');
    ok(run(repo, cache, ['init'], { env })); // encrypted: the default for a remote repository
    ok(run(repo, cache, ['create', src], { env }));
    const original = fs.readFileSync(path.join(folder, 'config'));
    const c = readConfig(folder);
    c.packSize = 1;
    writeConfig(folder, c);
    const before = state(folder);
    const fresh = path.join(dir, 'fresh-cache');
    expectRefused(run(repo, fresh, ['create', src], { env }), /failed authentication/);
    expect(state(folder)).toEqual(before);

    const plain = { ...JSON.parse(original.toString()), version: 1, hash: 'sha256', chunker: { ...c.chunker, gearSeed: 'cd'.repeat(32) } } as Record<string, unknown>;
    delete plain.encryption;
    writeConfig(folder, plain);
    expectRefused(run(repo, fresh, ['create', src], { env, noPassword: true }), /it holds key files/);
    fs.rmSync(path.join(folder, 'keys'), { recursive: true });
    const withoutKeys = state(folder);
    expectRefused(run(repo, cache, ['create', src], { env, noPassword: true }), /this machine opened an encrypted repository here/);
    expect(state(folder)).toEqual(withoutKeys);
  }, 300_000);
});
