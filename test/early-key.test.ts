// The key derivation started before the CLI's modules load (cli/early-key.ts, core/crypto.ts
// deriveKeyEarly): taken only by a derivation of the same password and parameters, and the guess of
// what a command will ask for, from its arguments. The CLI runs against real encrypted repositories.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { deriveKey, deriveKeyEarly, random, type ScryptParams } from '../src/core/crypto.js';
import { earlyArgs, earlyDerivation } from '../src/cli/early-key.js';
import { writeKnown } from '../src/repo/known.js';
import { snap, tmpDir } from './helpers/cli.js';

const params = (): ScryptParams => ({ algorithm: 'scrypt', N: 1024, r: 8, p: 1, salt: random(16) });

describe('deriveKeyEarly', () => {
  it('a derivation of the same password and parameters takes the early one; any other derives its own; it is taken once', async () => {
    const k = params();
    const pw = Buffer.from('early-pw');
    const own = await deriveKey(pw, k); // nothing started early: derived here
    deriveKeyEarly(pw, k);
    // Other parameters, another password: not the early one, and each right for what it was given.
    const other = { ...k, salt: random(16) };
    expect((await deriveKey(pw, other)).equals(own)).toBe(false);
    expect((await deriveKey(Buffer.from('early-pX'), k)).equals(own)).toBe(false);
    expect((await deriveKey(Buffer.from('early-pwx'), k)).equals(own)).toBe(false);
    // The same: the early one, equal to a derivation of its own.
    expect((await deriveKey(Buffer.from('early-pw'), k)).equals(own)).toBe(true);
    expect((await deriveKey(pw, k)).equals(own)).toBe(true);
  });

  it('refused parameters start nothing, and deriveKey still refuses them', async () => {
    const bad = { ...params(), N: 1000 };
    deriveKeyEarly(Buffer.from('x'), bad);
    await expect(deriveKey(Buffer.from('x'), bad)).rejects.toThrow(/power of two/);
  });
});

describe('earlyArgs: what a command line says before it is parsed', () => {
  it('finds the command, --repo and --password-file among the global options, in every form', () => {
    expect(earlyArgs(['create', '/src'])).toEqual({ command: 'create', passwordCommand: false });
    expect(earlyArgs(['--repo', '/r', '-q', 'restore', 'latest', '/to'])).toEqual({ command: 'restore', repo: '/r', passwordCommand: false });
    expect(earlyArgs(['-r', '/r', '--password-file=/pw', '--json', 'list'])).toEqual({ command: 'list', repo: '/r', passwordFile: '/pw', passwordCommand: false });
    expect(earlyArgs(['--lock-wait', '5m', '--repo=/r', 'check', '--read-data'])).toEqual({ command: 'check', repo: '/r', passwordCommand: false });
    expect(earlyArgs(['--password-command', 'pass show snap', 'gc'])?.passwordCommand).toBe(true);
    // After the command too, as the last one given.
    expect(earlyArgs(['list', '--repo', '/a', '--repo', '/b'])?.repo).toBe('/b');
  });

  it('is unsure (undefined) for help, the version, a command that does not unlock, an option it does not know before the command, or a missing value', () => {
    for (const args of [[], ['--help'], ['create', '-h'], ['--version'], ['-V'], ['init'], ['key', 'list'], ['schedule'], ['ui'], ['watch', '/x'], ['--bogus', 'create'], ['--repo'], ['create', '--', 'x']]) {
      expect(earlyArgs(args), args.join(' ')).toBeUndefined();
    }
  });
});

describe('earlyDerivation of a remote repository: what this machine recorded for the location', () => {
  it('is the recorded key derivation with the password at hand; nothing for a location without one, or with a damaged one; the storage is not contacted', async () => {
    const cache = path.join(tmpDir(), 'cache');
    const env = { SNAP_CACHE_DIR: cache, SNAP_PASSWORD: 'remote-early-pw' };
    // Port 1 of this machine: nothing listens there, and nothing here would connect.
    const repo = 's3:http://127.0.0.1:1/bucket/early';
    const args = ['--repo', repo, '-q', 'restore', 'latest', '/to'];
    expect(earlyDerivation(args, env, '/')).toBeUndefined();
    const salt = random(32);
    const record = { location: repo, id: 'ab'.repeat(16), version: 2, config: 'cd'.repeat(32), authenticated: true, since: new Date(0).toISOString() };
    await writeKnown(path.join(cache, 'known'), { ...record, kdf: { N: 2048, r: 8, p: 1, salt: salt.toString('base64') } });
    const d = earlyDerivation(args, env, '/');
    expect(d?.password.toString()).toBe('remote-early-pw');
    expect(d?.kdf).toEqual({ algorithm: 'scrypt', N: 2048, r: 8, p: 1, salt });
    // The same record read through SNAP_REPO, not for another location, and nothing without a password.
    expect(earlyDerivation(['list'], { ...env, SNAP_REPO: repo }, '/')?.kdf.N).toBe(2048);
    expect(earlyDerivation(['--repo', repo + '2', 'list'], env, '/')).toBeUndefined();
    expect(earlyDerivation(args, { SNAP_CACHE_DIR: cache }, '/')).toBeUndefined();
    // A record without a derivation (written before), or with one that is not a key file's, starts nothing.
    await writeKnown(path.join(cache, 'known'), record);
    expect(earlyDerivation(args, env, '/')).toBeUndefined();
    await writeKnown(path.join(cache, 'known'), { ...record, kdf: { N: '2048', r: 8, p: 1, salt: salt.toString('base64') } as never });
    expect(earlyDerivation(args, env, '/')).toBeUndefined();
  });
});

describe('the CLI with the derivation started early', () => {
  it('opens an encrypted repository with SNAP_PASSWORD and with --password-file and refuses a wrong password from either (exit 4)', () => {
    const dir = tmpDir();
    const repo = path.join(dir, 'repo');
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'a.txt'), 'early\n');
    const env = { SNAP_PASSWORD: 'early-cli-pw', SNAP_CACHE_DIR: path.join(dir, 'cache'), SNAP_KDF_SCRYPT_N: '1024' };
    const init = snap(['--repo', repo, 'init', '--encrypt'], { env });
    expect(init.code, init.stderr).toBe(0);
    expect(snap(['--repo', repo, '-q', 'create', src], { env }).code).toBe(0);
    const pwFile = path.join(dir, 'pw');
    fs.writeFileSync(pwFile, 'early-cli-pw\n');
    const byFile = snap(['--repo', repo, '--password-file', pwFile, '--json', 'list'], { env: { ...env, SNAP_PASSWORD: 'not-this-one' } });
    expect(byFile.code, byFile.stderr).toBe(0);
    expect(JSON.parse(byFile.stdout)).toHaveLength(1);
    const wrong = snap(['--repo', repo, 'list'], { env: { ...env, SNAP_PASSWORD: 'not-the-password' } });
    expect(wrong.code).toBe(4);
    expect(wrong.stderr).toMatch(/\[SNAP_WRONG_PASSWORD\]/);
    const wrongFile = path.join(dir, 'pw2');
    fs.writeFileSync(wrongFile, 'wrong\n');
    expect(snap(['--repo', repo, '--password-file', wrongFile, 'list'], { env }).code).toBe(4);
    const restored = path.join(dir, 'out');
    expect(snap(['--repo', repo, '-q', 'restore', 'latest', restored], { env }).code).toBe(0);
    expect(fs.readFileSync(path.join(restored, src, 'a.txt'), 'utf8')).toBe('early\n');
  });
});
