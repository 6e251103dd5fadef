// End to end through the built CLI against a real Azurite (test/helpers/azurite.ts): a repository
// on Azure Blob Storage from init to gc (encrypted by default, the container made by init, the
// index in the local cache folder), snap copy to and from it, two clients backing up at once
// while a third runs forget and gc, and the server stopped in the middle of a pack's upload. The
// scenarios shared with S3 are in helpers/remote-e2e.ts (the cache catching up with other clients
// runs on S3 only: it is the repository layer's, over list and ranged reads that the conformance
// suite checks on Azure).
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJson, snap, tmpDir } from './helpers/cli.js';
import { TestAzurite, azuriteMissing } from './helpers/azurite.js';
import { expectBackupThroughRestart, expectCheckClean, expectConcurrentBackupsWithGc, expectInitToGc, expectRestoresExactly, listSnapshots, makeSource, ok } from './helpers/remote-e2e.js';

const missing = azuriteMissing();
if (missing) console.warn(`SKIPPED: the Azure end-to-end tests need Azurite: ${missing}`);
let azurite: TestAzurite | undefined;

beforeAll(async () => {
  if (!missing) azurite = await TestAzurite.start();
}, 120_000);
afterAll(async () => {
  await azurite?.close();
});

const container = (): string => `e2e-${randomBytes(5).toString('hex')}`;

describe('a repository on Azure Blob Storage (Azurite)', () => {
  it('init (encrypted unless --no-encryption; makes the container), create, list, restore, check, forget, gc; errors name the location', (ctx) => {
    if (!azurite) return ctx.skip();
    const env = azurite.client();
    const repo = azurite.location(container(), 'repo');
    const none = snap(['--repo', repo, 'list'], { env });
    expect([none.code, none.stderr]).toEqual([1, expect.stringMatching(/azure:.*SNAP_NO_REPO/)]);
    const left = expectInitToGc(repo, env, 1024 * 1024);

    // Another client signing in with a connection string instead of the key sees the same repository.
    const other = { ...azurite.client(), AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString };
    delete (other as Record<string, string | undefined>).AZURE_STORAGE_KEY;
    delete (other as Record<string, string | undefined>).AZURE_STORAGE_ENDPOINT;
    expect(listSnapshots(repo, other).map((s) => s.id)).toEqual([left]);

    // A wrong key: SNAP_PERMISSION naming the location, never the key.
    const wrong = Buffer.from('wrong key wrong key').toString('base64');
    const bad = snap(['--repo', repo, 'list'], { env: { ...env, AZURE_STORAGE_KEY: wrong } });
    expect([bad.code, bad.stderr]).toEqual([1, expect.stringMatching(new RegExp(`${repo}: .*permission denied.*SNAP_PERMISSION`))]);
    expect(bad.stderr).not.toContain(wrong);
    expect(bad.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('an encrypted repository (the default) backs up and restores', (ctx) => {
    if (!azurite) return ctx.skip();
    const env = { ...azurite.client(), SNAP_PASSWORD: 'azure-pw', SNAP_KDF_SCRYPT_N: '1024' };
    const repo = azurite.location(container(), 'enc');
    ok(['--repo', repo, 'init'], env);
    const src = makeSource('az-enc', 64 * 1024);
    ok(['--repo', repo, 'create', src], env);
    expectRestoresExactly(repo, 'latest', src, env);
    const noPw = snap(['--repo', repo, 'list'], { env: azurite.client() });
    expect([noPw.code, noPw.stderr]).toEqual([1, expect.stringMatching(/encrypted.*SNAP_NO_PASSWORD/)]);
  });

  it('snap copy: local -> Azure -> local restores byte for byte; a second copy sends only what is new; local -> encrypted Azure', (ctx) => {
    if (!azurite) return ctx.skip();
    const env = { ...azurite.client(), SNAP_PASSWORD: 'azure-copy-pw', SNAP_KDF_SCRYPT_N: '1024' };
    const local = path.join(tmpDir(), 'local');
    const az = azurite.location(container(), 'copy');
    const back = path.join(tmpDir(), 'back');
    ok(['--repo', local, 'init'], env);
    ok(['--repo', az, 'init', '--no-encryption'], env);
    ok(['--repo', back, 'init'], env);
    const src = makeSource('az-copy', 1024 * 1024);
    ok(['--repo', local, 'create', src], env);
    interface CopyJson {
      copied: { source: string; id: string }[];
      objects_copied: number;
    }
    const copy = (to: string, from: string): CopyJson => parseJson<CopyJson>(ok(['--repo', to, '--json', 'copy', '--from-repo', from], env).stdout);
    expect(copy(az, local).copied).toHaveLength(1);
    expect(copy(back, az).copied).toHaveLength(1);
    expectRestoresExactly(back, 'latest', src, env);
    // A small change: the second copy sends a few objects, not the big file again.
    fs.writeFileSync(path.join(src, 'sub', 'new.txt'), 'new\n');
    ok(['--repo', local, 'create', src], env);
    const second = copy(az, local);
    expect(second.copied).toHaveLength(1);
    expect(second.objects_copied).toBeGreaterThan(0);
    expect(second.objects_copied).toBeLessThan(10);
    expect(copy(back, az).copied).toHaveLength(1);
    expectRestoresExactly(back, 'latest', src, env);
    expectCheckClean(az, env);
    expectCheckClean(back, env);
    // The 3-2-1 recipe with the default for a remote repository: copied into an encrypted one.
    const enc = azurite.location(container(), 'copy-enc');
    ok(['--repo', enc, 'init'], env);
    expect(copy(enc, local).copied).toHaveLength(2);
    expectRestoresExactly(enc, 'latest', src, env);
  });

  it('two clients back up into one repository at once while a third runs forget and gc', async (ctx) => {
    if (!azurite) return ctx.skip();
    await expectConcurrentBackupsWithGc(azurite.location(container(), 'many'), [azurite.client(), azurite.client(), azurite.client()], 2 * 1024 * 1024);
  }, 300_000);
});

describe('Azurite stopped in the middle of an upload', () => {
  let own: TestAzurite | undefined;
  afterAll(async () => {
    await own?.close();
  });

  it('snap retries until it is back; every pack is complete or absent, check is clean and every listed snapshot restores exactly', async (ctx) => {
    if (missing) return ctx.skip();
    // A server of this test's own, keeping its blobs on disk across the restart.
    own = await TestAzurite.start();
    const name = container();
    const restart = async (): Promise<void> => {
      await own!.stop(); // the next pack's blocks are on their way
      await new Promise((r) => setTimeout(r, 1000));
      await own!.start();
    };
    await expectBackupThroughRestart(own.location(name, 'crash'), own.client(), own.backend(name, { prefix: 'crash' }), restart);
  }, 300_000);
});
