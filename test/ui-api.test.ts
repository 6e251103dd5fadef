// The UI's JSON API answers with the very documents the CLI prints with --json (docs/ui.md), and
// its downloads are the bytes `snap cat` and `snap export` write, names that are not UTF-8 included.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snap, snapBytes, tmpDir } from './helpers/cli.js';
import { login, request, startUi, type UiProcess } from './helpers/ui-server.js';

let base: string;
let repo: string;
let src: string;
let ui: UiProcess;
let cookie: string;
let csrf: string;
const ids: string[] = [];
// A name that is not UTF-8: Latin-1 "café".
const LATIN1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]);

const hex = (s: string | Buffer): string => Buffer.from(s).toString('hex');
const get = async (p: string): Promise<any> => {
  const r = await request(ui.port, p, { headers: { cookie } });
  expect(r.status, r.body.toString()).toBe(200);
  return r;
};
const cli = (args: string[]): any => {
  const r = snap(['--repo', repo, '--json', ...args], { env: { TZ: 'UTC' } });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
};

beforeAll(async () => {
  base = tmpDir('snap-ui-api-');
  repo = path.join(base, 'repo');
  src = path.join(base, 'src');
  fs.mkdirSync(path.join(src, 'a', 'b'), { recursive: true });
  fs.writeFileSync(path.join(src, 'a', 'one.txt'), 'one\n');
  fs.writeFileSync(path.join(src, 'a', 'b', 'two.txt'), 'two\n');
  fs.symlinkSync('one.txt', path.join(src, 'a', 'link'));
  fs.writeFileSync(Buffer.concat([Buffer.from(path.join(src, 'a') + '/'), LATIN1]), 'latin-1 name\n');
  expect(snap(['--repo', repo, 'init']).code).toBe(0);
  expect(snap(['--repo', repo, 'create', '--time', '2026-03-02T10:00:00Z', '--tag', 'x', src]).code).toBe(0);
  fs.writeFileSync(path.join(src, 'a', 'one.txt'), 'one, changed\n');
  fs.rmSync(path.join(src, 'a', 'b'), { recursive: true });
  expect(snap(['--repo', repo, 'create', '--time', '2026-03-09T10:00:00Z', src]).code).toBe(0);
  ids.push(...cli(['list']).map((s: { id: string }) => s.id));
  ui = await startUi(repo, ['--allow-restore'], { TZ: 'UTC' });
  cookie = await login(ui);
  csrf = (await get('/api/info')).json().csrf;
}, 120_000);

afterAll(async () => {
  if (ui) expect(await ui.stop()).toBe(0);
  fs.rmSync(base, { recursive: true, force: true });
});

describe('snap ui: the API is the CLI --json', () => {
  it('list, list --by (day, week, month; year in the page only) and a date reference', async () => {
    expect((await get('/api/snapshots')).json()).toEqual(cli(['list']));
    expect((await get('/api/snapshots?tag=x')).json()).toEqual(cli(['list', '--tag', 'x']));
    for (const by of ['day', 'week', 'month']) expect((await get(`/api/calendar?by=${by}`)).json()).toEqual(cli(['list', '--by', by]));
    // Years only in the page: the CLI's months of 2026 summed.
    const months = cli(['list', '--by', 'month']);
    const years = (await get('/api/calendar?by=year')).json();
    expect(years).toEqual([
      {
        period: '2026',
        count: months.reduce((n: number, m: any) => n + m.count, 0),
        added: months.reduce((n: number, m: any) => n + m.added, 0),
        size: months.at(-1).size,
        first: months[0].first,
        newest: months.at(-1).newest,
      },
    ]);
    expect((await get('/api/resolve?snapshot=2026-03-05')).json().id).toBe(ids[0]);
    expect((await get('/api/resolve?snapshot=latest')).json().id).toBe(ids[1]);
  });

  it('ls (a folder, a file), diff, history, find', async () => {
    const a = path.join(src, 'a');
    expect((await get(`/api/ls?snapshot=${ids[0]}&path_hex=${hex(a)}`)).json()).toEqual(cli(['ls', ids[0]!, a]));
    expect((await get(`/api/ls?snapshot=latest&path_hex=${hex(path.join(a, 'one.txt'))}`)).json()).toEqual(cli(['ls', 'latest', path.join(a, 'one.txt')]));
    expect((await get(`/api/diff?from=${ids[0]}&to=${ids[1]}`)).json()).toEqual(cli(['diff', ids[0]!, ids[1]!]));
    expect((await get(`/api/diff?from=${ids[0]}&to=${ids[1]}&path_hex=${hex(a)}`)).json()).toEqual(cli(['diff', ids[0]!, ids[1]!, a]));
    expect((await get(`/api/history?path_hex=${hex(path.join(a, 'one.txt'))}`)).json()).toEqual(cli(['history', path.join(a, 'one.txt')]));
    expect((await get('/api/find?pattern=*.txt')).json()).toEqual(cli(['find', '*.txt']));
  });

  it('a restore dry run, and the result of a restore job', async () => {
    const target = path.join(base, 'target');
    const one = path.join(src, 'a', 'one.txt');
    const body = { snapshot: ids[0], paths_hex: [hex(one)], target, overwrite: 'if-changed' };
    const dry = await request(ui.port, '/api/restore', { method: 'POST', headers: { cookie, 'x-snap-csrf': csrf }, body: JSON.stringify({ ...body, dry_run: true }) });
    expect(dry.status).toBe(200);
    expect(dry.json()).toEqual(cli(['restore', ids[0]!, target, '--include', one, '--overwrite', 'if-changed', '--dry-run']));
    expect(fs.existsSync(target)).toBe(false);
    const started = await request(ui.port, '/api/restore', { method: 'POST', headers: { cookie, 'x-snap-csrf': csrf }, body: JSON.stringify({ ...body, dry_run: false }) });
    const id = started.json().job;
    let job: any;
    for (let i = 0; i < 100 && job?.state !== 'done'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      job = (await get(`/api/jobs/${id}`)).json();
    }
    expect(job.state).toBe('done');
    expect(fs.readFileSync(path.join(target, one), 'utf8')).toBe('one\n');
    // Run again, the CLI says the same as the job: one file already present and identical.
    expect(cli(['restore', ids[0]!, target, '--include', one, '--overwrite', 'if-changed'])).toEqual({ ...job.result, unchanged: 1, files: 0, bytes: 0, dirs: job.result.dirs });
  });
});

describe('snap ui: downloads are what cat and export write', () => {
  it('a file whose name is not UTF-8, addressed by path_hex', async () => {
    const p = Buffer.concat([Buffer.from(path.join(src, 'a') + '/'), LATIN1]);
    const listed = (await get(`/api/ls?snapshot=latest&path_hex=${hex(path.join(src, 'a'))}`)).json().entries.map((e: any) => e.path_hex);
    expect(listed).toContain(hex(p));
    const r = await get(`/api/cat?snapshot=latest&path_hex=${hex(p)}`);
    expect(r.body.toString()).toBe('latin-1 name\n');
    expect(r.headers['content-type']).toBe('application/octet-stream');
    expect(r.headers['content-disposition']).toMatch(/^attachment; filename="caf_"; filename\*=UTF-8''caf%EF%BF%BD$/);
    expect(r.headers['content-security-policy']).toContain('sandbox');
  });

  for (const format of ['zip', 'tar.gz', 'tar'] as const) {
    it(`a folder as ${format}: byte for byte what snap export writes`, async () => {
      const a = path.join(src, 'a');
      const r = await get(`/api/export?snapshot=${ids[0]}&format=${format}&path_hex=${hex(a)}`);
      const out = path.join(base, `cli.${format}`);
      const c = snapBytes(['--repo', repo, 'export', ids[0]!, out, '--path', a]);
      expect(c.code, c.stderr).toBe(0);
      expect(r.body.equals(fs.readFileSync(out))).toBe(true);
      expect(r.headers['content-disposition']).toContain(`${ids[0]!.slice(0, 8)}-a.${format}`);
    });
  }

  it('a symlink is not a file to download: 400', async () => {
    const r = await request(ui.port, `/api/cat?snapshot=latest&path_hex=${hex(path.join(src, 'a', 'link'))}`, { headers: { cookie } });
    expect(r.status).toBe(400);
    expect(r.json().error.code).toBe('SNAP_USAGE');
  });

  it('a missing path or snapshot: 404', async () => {
    expect((await request(ui.port, `/api/ls?snapshot=latest&path_hex=${hex(path.join(src, 'nope'))}`, { headers: { cookie } })).status).toBe(404);
    expect((await request(ui.port, '/api/ls?snapshot=ffffffff&path=/', { headers: { cookie } })).status).toBe(404);
    expect((await request(ui.port, '/api/nothing', { headers: { cookie } })).status).toBe(404);
  });
});

describe('snap ui: the command line', () => {
  it('refuses a non-loopback --listen without --allow-remote, and a malformed one', () => {
    const r = snap(['--repo', repo, 'ui', '--no-open', '--listen', '0.0.0.0:0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--allow-remote.*\[SNAP_USAGE\]/);
    const bad = snap(['--repo', repo, 'ui', '--no-open', '--listen', 'localhost']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--listen must be HOST:PORT');
  });

  it('fails without a repository, before serving anything', () => {
    const r = snap(['--repo', path.join(base, 'no-repo'), 'ui', '--no-open']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('[SNAP_NO_REPO]');
  });

  it('with --allow-remote, warns and still checks Host', async () => {
    const remote = await startUi(repo, ['--listen', '0.0.0.0:0', '--allow-remote']);
    try {
      expect(remote.stderr()).toMatch(/^warning: serving on 0\.0\.0\.0:0, not only this machine/m);
      const u = new URL(remote.url);
      const login = await request(remote.port, u.pathname + u.search);
      expect(login.status).toBe(303);
      const c = login.headers['set-cookie']![0]!.split(';')[0]!;
      expect((await request(remote.port, '/api/info', { headers: { cookie: c } })).status).toBe(200);
      expect((await request(remote.port, '/api/info', { headers: { cookie: c, host: `evil.example:${remote.port}` } })).status).toBe(421);
    } finally {
      expect(await remote.stop()).toBe(0);
    }
  });
});
