// `snap ui`'s guards, against the real server process: every refused request gets the right
// status, carries no repository data, and writes nothing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snap, tmpDir } from './helpers/cli.js';
import { login, request, startUi, type UiProcess } from './helpers/ui-server.js';

const SECRET = 'secret file contents 0123456789';
let base: string;
let repo: string;
let src: string;
let ro: UiProcess;
let rw: UiProcess;
let roCookie: string;
let rwCookie: string;
let csrf: string;

const hex = (s: string | Buffer): string => Buffer.from(s).toString('hex');

beforeAll(async () => {
  base = tmpDir('snap-ui-sec-');
  repo = path.join(base, 'repo');
  src = path.join(base, 'src');
  fs.mkdirSync(path.join(src, 'docs'), { recursive: true });
  fs.writeFileSync(path.join(src, 'docs', 'secret.txt'), SECRET);
  expect(snap(['--repo', repo, 'init']).code).toBe(0);
  const c = snap(['--repo', repo, 'create', src]);
  expect(c.code, c.stderr).toBe(0);
  ro = await startUi(repo);
  rw = await startUi(repo, ['--allow-restore']);
  roCookie = await login(ro);
  rwCookie = await login(rw);
  csrf = (await request(rw.port, '/api/info', { headers: { cookie: rwCookie } })).json().csrf;
});

afterAll(async () => {
  expect(await ro?.stop()).toBe(0);
  expect(await rw?.stop()).toBe(0);
  fs.rmSync(base, { recursive: true, force: true });
});

const secretPath = (): string => path.join(src, 'docs', 'secret.txt');

function refused(r: { status: number; body: Buffer }, status: number, code?: string): void {
  expect(r.status).toBe(status);
  expect(r.body.toString()).not.toContain(SECRET);
  if (code) expect(JSON.parse(r.body.toString()).error.code).toBe(code);
}

describe('snap ui: sessions', () => {
  it('serves the file to a session (the baseline the refusals below are measured against)', async () => {
    const r = await request(ro.port, `/api/cat?snapshot=latest&path_hex=${hex(secretPath())}`, { headers: { cookie: roCookie } });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe(SECRET);
  });

  it('refuses requests without a session: 401', async () => {
    refused(await request(ro.port, `/api/cat?snapshot=latest&path_hex=${hex(secretPath())}`), 401, 'SNAP_UI_SESSION');
    refused(await request(ro.port, '/'), 401, 'SNAP_UI_SESSION');
    refused(await request(ro.port, '/app.js'), 401);
    refused(await request(ro.port, '/api/info', { headers: { cookie: 'snap_ui_session_1=forged' } }), 401);
    refused(await request(ro.port, '/api/info', { headers: { cookie: `snap_ui_session_${ro.port}=forged` } }), 401);
  });

  it('refuses a wrong token and a used one: 401, no cookie set', async () => {
    const ui = await startUi(repo);
    try {
      const wrong = await request(ui.port, '/?token=not-the-token');
      refused(wrong, 401, 'SNAP_UI_TOKEN');
      expect(wrong.headers['set-cookie']).toBeUndefined();
      // A wrong guess does not use up the real token; the real one works once.
      const cookie = await login(ui);
      expect((await request(ui.port, '/api/info', { headers: { cookie } })).status).toBe(200);
      const again = await request(ui.port, new URL(ui.url).pathname + new URL(ui.url).search);
      refused(again, 401, 'SNAP_UI_TOKEN');
      expect(again.headers['set-cookie']).toBeUndefined();
    } finally {
      expect(await ui.stop()).toBe(0);
    }
  });
});

describe('snap ui: addresses (DNS rebinding, cross-site requests)', () => {
  it('refuses a foreign Host, even with a valid session: 421', async () => {
    for (const host of ['evil.example', `evil.example:${ro.port}`, `127.0.0.1:${ro.port + 1}`, `127.0.0.1.evil.example:${ro.port}`]) {
      refused(await request(ro.port, `/api/cat?snapshot=latest&path_hex=${hex(secretPath())}`, { headers: { host, cookie: roCookie } }), 421, 'SNAP_UI_HOST');
    }
    // No Host at all: Node's HTTP/1.1 parser refuses it before the server sees it.
    refused(await request(ro.port, '/api/info', { headers: { cookie: roCookie }, noHost: true }), 400);
    // The login link too: a rebinding page cannot start a session.
    const ui = await startUi(repo);
    try {
      const u = new URL(ui.url);
      refused(await request(ui.port, u.pathname + u.search, { headers: { host: `attacker.example:${ui.port}` } }), 421);
      expect((await request(ui.port, u.pathname + u.search)).status).toBe(303); // still unused
    } finally {
      await ui.stop();
    }
  });

  it('accepts localhost and 127.0.0.1 at the served port', async () => {
    for (const host of [`localhost:${ro.port}`, `127.0.0.1:${ro.port}`]) {
      expect((await request(ro.port, '/api/info', { headers: { host, cookie: roCookie } })).status).toBe(200);
    }
  });

  it('refuses a foreign Origin or a cross-site fetch: 403', async () => {
    refused(await request(ro.port, `/api/cat?snapshot=latest&path_hex=${hex(secretPath())}`, { headers: { cookie: roCookie, origin: 'http://evil.example' } }), 403, 'SNAP_UI_ORIGIN');
    refused(await request(ro.port, `/api/cat?snapshot=latest&path_hex=${hex(secretPath())}`, { headers: { cookie: roCookie, origin: 'null' } }), 403, 'SNAP_UI_ORIGIN');
    refused(await request(ro.port, `/api/cat?snapshot=latest&path_hex=${hex(secretPath())}`, { headers: { cookie: roCookie, 'sec-fetch-site': 'cross-site' } }), 403, 'SNAP_UI_ORIGIN');
    expect((await request(ro.port, '/api/info', { headers: { cookie: roCookie, origin: ro.origin, 'sec-fetch-site': 'same-origin' } })).status).toBe(200);
  });
});

describe('snap ui: changes need a CSRF token and --allow-restore', () => {
  const restoreBody = (target: string, extra: Record<string, unknown> = {}): string =>
    JSON.stringify({ snapshot: 'latest', paths_hex: [hex(secretPath())], target, dry_run: false, ...extra });

  it('refuses a restore without the CSRF token, or with a wrong one: 403, nothing written', async () => {
    const target = path.join(base, 'csrf-target');
    fs.mkdirSync(target);
    refused(await request(rw.port, '/api/restore', { method: 'POST', headers: { cookie: rwCookie, 'content-type': 'application/json' }, body: restoreBody(target) }), 403, 'SNAP_UI_CSRF');
    refused(await request(rw.port, '/api/restore', { method: 'POST', headers: { cookie: rwCookie, 'x-snap-csrf': 'wrong' }, body: restoreBody(target) }), 403, 'SNAP_UI_CSRF');
    // The token of another server's session is not this one's.
    const roCsrf = (await request(ro.port, '/api/info', { headers: { cookie: roCookie } })).json().csrf;
    refused(await request(rw.port, '/api/restore', { method: 'POST', headers: { cookie: rwCookie, 'x-snap-csrf': roCsrf }, body: restoreBody(target) }), 403, 'SNAP_UI_CSRF');
    await new Promise((r) => setTimeout(r, 500));
    expect(fs.readdirSync(target)).toEqual([]);
  });

  it('refuses restores on a read-only server: 403, nothing written', async () => {
    const target = path.join(base, 'ro-target');
    fs.mkdirSync(target);
    const roCsrf = (await request(ro.port, '/api/info', { headers: { cookie: roCookie } })).json().csrf;
    refused(await request(ro.port, '/api/restore', { method: 'POST', headers: { cookie: roCookie, 'x-snap-csrf': roCsrf }, body: restoreBody(target) }), 403, 'SNAP_UI_READ_ONLY');
    refused(await request(ro.port, '/api/restore', { method: 'POST', headers: { cookie: roCookie, 'x-snap-csrf': roCsrf }, body: restoreBody(target, { dry_run: true }) }), 403, 'SNAP_UI_READ_ONLY');
    await new Promise((r) => setTimeout(r, 500));
    expect(fs.readdirSync(target)).toEqual([]);
  });

  it('restores with the token (so the refusals above were the guards, not a broken restore)', async () => {
    const target = path.join(base, 'ok-target');
    fs.mkdirSync(target);
    const r = await request(rw.port, '/api/restore', { method: 'POST', headers: { cookie: rwCookie, 'x-snap-csrf': csrf }, body: restoreBody(target) });
    expect(r.status, r.body.toString()).toBe(202);
    const id = r.json().job;
    let job: any;
    for (let i = 0; i < 200; i++) {
      job = (await request(rw.port, `/api/jobs/${id}`, { headers: { cookie: rwCookie } })).json();
      if (job.state !== 'running') break;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(job.state, JSON.stringify(job)).toBe('done');
    expect(fs.readFileSync(path.join(target, secretPath()), 'utf8')).toBe(SECRET);
  });

  it('refuses methods other than GET, HEAD and POST: 405', async () => {
    refused(await request(rw.port, '/api/info', { method: 'PUT', headers: { cookie: rwCookie, 'x-snap-csrf': csrf } }), 405);
  });
});

describe('snap ui: hostile paths are refused before anything is read or written', () => {
  const get = (p: string): Promise<{ status: number; body: Buffer; json(): any }> => request(ro.port, p, { headers: { cookie: roCookie } });

  it('`..` and `.` components: 400', async () => {
    const dotted = `${path.join(src, 'docs')}/../docs/secret.txt`;
    refused(await get(`/api/cat?snapshot=latest&path=${encodeURIComponent(dotted)}`), 400, 'SNAP_UNSAFE_PATH');
    refused(await get(`/api/cat?snapshot=latest&path_hex=${hex(dotted)}`), 400, 'SNAP_UNSAFE_PATH');
    refused(await get(`/api/cat?snapshot=latest&path_hex=${hex(`${src}/./docs/secret.txt`)}`), 400, 'SNAP_UNSAFE_PATH');
    refused(await get(`/api/export?snapshot=latest&format=zip&path_hex=${hex('/..')}`), 400, 'SNAP_UNSAFE_PATH');
    refused(await get('/api/../api/info'), 400, 'SNAP_UNSAFE_PATH');
    refused(await get('/api/%2e%2e/api/info'), 400, 'SNAP_UNSAFE_PATH');
    refused(await get('/vendor/../app.js'), 400, 'SNAP_UNSAFE_PATH');
  });

  it('a restore target with `..`: 400, nothing written', async () => {
    const target = path.join(base, 'dotdot-target');
    fs.mkdirSync(path.join(target, 'inner'), { recursive: true });
    const body = JSON.stringify({ snapshot: 'latest', paths_hex: [hex(secretPath())], target: `${target}/inner/..`, dry_run: false });
    refused(await request(rw.port, '/api/restore', { method: 'POST', headers: { cookie: rwCookie, 'x-snap-csrf': csrf }, body }), 400, 'SNAP_UNSAFE_PATH');
    const rel = JSON.stringify({ snapshot: 'latest', paths_hex: [hex(secretPath())], target: 'relative/folder', dry_run: false });
    refused(await request(rw.port, '/api/restore', { method: 'POST', headers: { cookie: rwCookie, 'x-snap-csrf': csrf }, body: rel }), 400, 'SNAP_UNSAFE_PATH');
    await new Promise((r) => setTimeout(r, 500));
    expect(fs.readdirSync(target)).toEqual(['inner']);
    expect(fs.readdirSync(path.join(target, 'inner'))).toEqual([]);
  });

  it('encoded slashes and backslashes in the request path: 400', async () => {
    refused(await get('/api%2Fcat?snapshot=latest&path=/'), 400, 'SNAP_UNSAFE_PATH');
    refused(await get('/api/jobs/..%2F..%2Finfo'), 400, 'SNAP_UNSAFE_PATH');
    refused(await get('/api/jobs/x%2fcancel'), 400, 'SNAP_UNSAFE_PATH');
    refused(await get('/api/jobs/x%5Ccancel'), 400, 'SNAP_UNSAFE_PATH');
    refused(await get('//api/info'), 400, 'SNAP_UNSAFE_PATH');
    refused(await get('//'), 400, 'SNAP_UNSAFE_PATH');
    refused(await get(`http://127.0.0.1:${ro.port}/api/info`), 400, 'SNAP_UNSAFE_PATH');
  });

  it('NUL bytes: 400', async () => {
    refused(await get(`/api/cat?snapshot=latest&path=${encodeURIComponent(secretPath())}%00.txt`), 400, 'SNAP_UNSAFE_PATH');
    refused(await get(`/api/cat?snapshot=latest&path_hex=${hex(secretPath())}00`), 400, 'SNAP_UNSAFE_PATH');
    refused(await get(`/api/cat%00?snapshot=latest&path_hex=${hex(secretPath())}`), 400, 'SNAP_UNSAFE_PATH');
    refused(await get(`/api/cat?snapshot=latest%00&path_hex=${hex(secretPath())}`), 400, 'SNAP_UNSAFE_PATH');
  });
});
