// The conformance suite against LocalBackend, each test in a fresh temporary folder.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../../src/backend/local.js';
import { fsDecode } from '../../src/core/bytes.js';
import { backendConformance } from './conformance.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

backendConformance('LocalBackend', {
  async make() {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-backend-'));
    dirs.push(d);
    return new LocalBackend(path.join(d, 'repo'));
  },
});

// A repository folder whose name is not UTF-8 (issue 10, defect 4): the backend gets it as a
// lossless string (core/bytes.ts) and must reach exactly those bytes in every call, the
// streaming ones included.
backendConformance('LocalBackend in a folder whose name is not UTF-8', {
  async make() {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-backend-'));
    dirs.push(d);
    const root = Buffer.concat([Buffer.from(path.join(d, 'repo')), Buffer.from([0xff, 0x0a])]);
    const b = new LocalBackend(fsDecode(root));
    await b.put('config', Buffer.from('x'));
    // The bytes themselves, not a U+FFFD spelling of them.
    if (!fs.existsSync(Buffer.concat([root, Buffer.from('/config')]))) throw new Error('the repository folder is not the one named');
    await b.delete('config');
    return b;
  },
});

describe('LocalBackend: free space and the sweep of one folder (repo/reserve.ts, repo/maintenance.ts)', () => {
  it('freeSpace is the file system\'s space free for this process', async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-backend-'));
    dirs.push(d);
    const b = new LocalBackend(d);
    const s = fs.statfsSync(d);
    const free = await b.freeSpace();
    expect(Number.isSafeInteger(free)).toBe(true);
    // Other processes write meanwhile: within 256 MiB of statfs's own answer.
    expect(Math.abs(free! - s.bavail * s.bsize)).toBeLessThan(256 * 1024 * 1024);
  });

  it('removeTempFiles with topOnly sweeps the top folder alone; without, every folder below', async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-backend-'));
    dirs.push(d);
    const b = new LocalBackend(d);
    await b.put('data/aa/blob', Buffer.from('x'));
    await b.put('config', Buffer.from('c'));
    fs.writeFileSync(path.join(d, '.tmp-top'), 'a reserve cut short');
    fs.writeFileSync(path.join(d, 'data', 'aa', '.tmp-deep'), 'a pack cut short');
    expect(await b.removeTempFiles('', 0, true)).toBe(1);
    expect(fs.readdirSync(d).sort()).toEqual(['config', 'data']);
    expect(fs.readdirSync(path.join(d, 'data', 'aa')).sort()).toEqual(['.tmp-deep', 'blob']);
    expect(await b.removeTempFiles('', 0)).toBe(1);
    expect(fs.readdirSync(path.join(d, 'data', 'aa'))).toEqual(['blob']);
  });
});
