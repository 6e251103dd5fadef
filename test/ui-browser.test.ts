// `snap ui` end to end in a real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core): pick a date, walk into a folder, step one snapshot back, preview a text file,
// download a folder as zip (every byte checked with Python's zipfile), compare two snapshots,
// restore a file. Screenshots of each page go to docs/ui/ when SNAP_UI_SCREENSHOTS=1
// (docs/ui.md shows them), else to the test's temporary folder.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, snap, tmpDir } from './helpers/cli.js';
import { startUi, type UiProcess } from './helpers/ui-server.js';

const CHROMIUM = '/usr/bin/chromium';
const HAVE = fs.existsSync(CHROMIUM) && spawnSync('python3', ['--version']).status === 0;
const SKIP = HAVE ? '' : ` [skipped: needs ${CHROMIUM} and python3; .ci/run installs chromium with apt-get]`;
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
// A 1x1 PNG, for the image preview.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');

const hex = (s: string): string => Buffer.from(s).toString('hex');
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Every regular file under `dir`, keyed by its absolute path without the leading slash (as export names them). */
function filesUnder(dir: string, out: Record<string, string> = {}): Record<string, string> {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) filesUnder(p, out);
    else if (e.isFile()) out[p.slice(1)] = sha(fs.readFileSync(p));
  }
  return out;
}

const PY_ZIP = `
import hashlib, json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
bad = z.testzip()
if bad: sys.exit('bad CRC: ' + bad)
print(json.dumps({i.filename: hashlib.sha256(z.read(i)).hexdigest() for i in z.infolist() if not i.is_dir()}))
`;

describe.skipIf(!HAVE)(`snap ui in Chromium${SKIP}`, () => {
  let base: string;
  let repo: string;
  let src: string;
  let shots: string;
  let ui: UiProcess;
  let browser: any;
  let page: any;
  const ids: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    base = tmpDir('snap-ui-e2e-');
    repo = path.join(base, 'repo');
    src = path.join(base, 'src');
    shots = process.env.SNAP_UI_SCREENSHOTS === '1' ? path.join(ROOT, 'docs', 'ui') : path.join(base, 'shots');
    fs.mkdirSync(shots, { recursive: true });
    fs.mkdirSync(path.join(src, 'docs', 'drafts'), { recursive: true });
    fs.mkdirSync(path.join(src, 'photos'), { recursive: true });
    const w = (p: string, data: string | Buffer): void => fs.writeFileSync(path.join(src, p), data);
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const create = (time: string, tag: string): void => {
      const r = snap(['--repo', repo, '--json', 'create', '--time', time, '--tag', tag, src], { env: { TZ: 'UTC' } });
      expect(r.code, r.stderr).toBe(0);
    };
    w('docs/notes.txt', 'Monday notes\nline two\nline three\n');
    w('docs/drafts/plan.md', '# plan\n- first\n');
    w('README', 'the project\n');
    create('2026-03-02T09:00:00Z', 'daily');
    w('docs/notes.txt', 'Wednesday notes\nline two\nline three, changed\nline four\n');
    w('photos/dot.png', PNG);
    w('photos/raw.bin', randomBytes(3 * 1024 * 1024 + 17));
    create('2026-03-04T18:30:00Z', 'daily');
    fs.rmSync(path.join(src, 'docs', 'drafts'), { recursive: true });
    w('docs/report.txt', 'final report\n'.repeat(500));
    create('2026-03-12T08:15:00Z', 'weekly');
    const list = snap(['--repo', repo, '--json', 'list']);
    ids.push(...JSON.parse(list.stdout).map((s: { id: string }) => s.id));
    expect(ids).toHaveLength(3);

    ui = await startUi(repo, ['--allow-restore'], { TZ: 'UTC' });
    const { chromium } = await import('playwright-core');
    // A fresh profile folder per run (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(path.join(base, 'profile'), {
      executablePath: CHROMIUM,
      args: FLAGS,
      acceptDownloads: true,
      viewport: { width: 1200, height: 800 },
      colorScheme: 'light',
    });
    page = await browser.newPage();
    page.on('pageerror', (e: Error) => pageErrors.push(e.message));
    page.on('console', (m: any) => m.type() === 'error' && pageErrors.push(m.text()));
  }, 120_000);

  afterAll(async () => {
    expect(pageErrors).toEqual([]);
    await browser?.close();
    if (ui) expect(await ui.stop()).toBe(0);
    fs.rmSync(base, { recursive: true, force: true });
  });

  const shot = (name: string): Promise<unknown> => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  const hashOf = (): Promise<string> => page.evaluate(() => location.hash);

  it('opens the link, shows the timeline and zooms', async () => {
    await page.goto(ui.url);
    await page.getByRole('heading', { name: 'Timeline' }).waitFor();
    expect(page.url()).toBe(`${ui.origin}/`); // the token left the address bar
    await page.getByRole('button', { name: 'day', exact: true }).click();
    await page.getByRole('button', { name: /^2026-03-12: 1 snapshots/ }).waitFor();
    expect(await page.locator('.chart:not(.snapchart) button').count()).toBe(3);
    await shot('timeline');
    // The tag filter narrows the timeline (and every other page) to matching snapshots.
    await page.selectOption('#f-tag', 'weekly');
    await page.waitForFunction(() => document.querySelectorAll('.chart:not(.snapchart) button').length === 1);
    await page.selectOption('#f-tag', '');
    await page.waitForFunction(() => document.querySelectorAll('.chart:not(.snapchart) button').length === 3);
    // By month, all three fall in March: one bar per snapshot shows what each added, and the
    // second (3 MiB of random bytes) stands out; a bar opens its snapshot.
    await page.getByRole('button', { name: 'month', exact: true }).click();
    await page.waitForFunction(() => document.querySelectorAll('.snapchart button').length === 3);
    const heights = await page.$$eval('.snapchart button', (bs) => bs.map((b) => [b.getAttribute('data-id'), b.getBoundingClientRect().height] as [string, number]));
    expect(heights.map(([id]) => id)).toEqual(ids);
    const tallest = heights.reduce((a, b) => (b[1] > a[1] ? b : a));
    expect(tallest[0]).toBe(ids[1]);
    expect(heights.filter(([id]) => id !== ids[1]).every(([, h]) => h < tallest[1] / 4)).toBe(true);
    await shot('timeline-month');
    await page.click(`.snapchart button[data-id="${ids[1]}"]`);
    await page.waitForFunction((id: string) => location.hash.includes(`s=${id}`), ids[1]);
    await page.getByRole('link', { name: 'photos/' }).waitFor();
    await page.goBack();
    await page.getByRole('heading', { name: 'Timeline' }).waitFor();
  });

  it('picks a date: the newest snapshot at or before it, at its backed-up folder', async () => {
    await page.fill('#pick-date', '2026-03-10');
    await page.click('#pick-go');
    await page.waitForFunction((id: string) => location.hash.includes(`s=${id}`), ids[1]);
    expect(await hashOf()).toContain(`p=${hex(src)}`);
    await page.getByRole('link', { name: 'docs/' }).waitFor();
  });

  it('walks into a folder and steps one snapshot back, keeping the folder', async () => {
    await page.getByRole('link', { name: 'docs/' }).click();
    await page.getByRole('link', { name: 'notes.txt' }).waitFor();
    expect(await page.inputValue('#path-input')).toBe(path.join(src, 'docs'));
    await page.click('#older');
    await page.waitForFunction((id: string) => location.hash.includes(`s=${id}`), ids[0]);
    await page.getByRole('link', { name: 'drafts/' }).waitFor();
    expect(await page.inputValue('#path-input')).toBe(path.join(src, 'docs'));
    await shot('browse');
    // The keyboard does the same: ] is one snapshot newer.
    await page.keyboard.press(']');
    await page.waitForFunction((id: string) => location.hash.includes(`s=${id}`), ids[1]);
    await page.keyboard.press('[');
    await page.waitForFunction((id: string) => location.hash.includes(`s=${id}`), ids[0]);
  });

  it('previews a text file as it was', async () => {
    await page.getByRole('link', { name: 'notes.txt' }).click();
    await page.locator('#preview').waitFor();
    expect(await page.textContent('#preview')).toBe('Monday notes\nline two\nline three\n');
    await shot('file');
  });

  it('shows an image in the page', async () => {
    await page.goto(`${ui.origin}/#/browse?s=${ids[1]}&p=${hex(path.join(src, 'photos', 'dot.png'))}`);
    await page.locator('#preview-img').waitFor();
    await page.waitForFunction(() => (document.getElementById('preview-img') as HTMLImageElement).naturalWidth === 1);
    await page.goto(`${ui.origin}/#/browse?s=${ids[0]}&p=${hex(path.join(src, 'docs', 'notes.txt'))}`);
    await page.locator('#preview').waitFor();
  });

  it("shows the file's history and two versions side by side", async () => {
    await page.click('#history');
    await page.getByRole('heading', { name: /History of/ }).waitFor();
    const boxes = page.locator('input[type=checkbox]');
    await boxes.first().waitFor();
    expect(await boxes.count()).toBe(2);
    await boxes.nth(0).check();
    await boxes.nth(1).check();
    await page.locator('#side-by-side .line-add').first().waitFor();
    expect(await page.textContent('#side-by-side')).toContain('line four');
    await shot('history');
  });

  it('downloads a folder as zip: every byte matches the source', async () => {
    await page.goto(`${ui.origin}/#/browse?s=${ids[2]}&p=${hex(src)}`);
    await page.getByRole('link', { name: 'photos/' }).waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#dl-zip')]);
    expect(download.suggestedFilename()).toBe(`${ids[2]!.slice(0, 8)}-src.zip`);
    const zip = path.join(base, 'download.zip');
    await download.saveAs(zip);
    const r = spawnSync('python3', ['-c', PY_ZIP, zip]);
    expect(r.status, r.stderr.toString()).toBe(0);
    const inZip = JSON.parse(r.stdout.toString());
    expect(inZip).toEqual(filesUnder(src));
    expect(Object.keys(inZip).length).toBe(5);
  });

  it('downloads a selection of a folder as zip', async () => {
    await page.getByRole('checkbox', { name: 'select README' }).check();
    await page.getByRole('checkbox', { name: 'select photos' }).check();
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#dl-sel-zip')]);
    const zip = path.join(base, 'selection.zip');
    await download.saveAs(zip);
    const r = spawnSync('python3', ['-c', PY_ZIP, zip]);
    expect(r.status, r.stderr.toString()).toBe(0);
    const want = Object.fromEntries(Object.entries(filesUnder(src)).filter(([k]) => k.endsWith('/README') || k.includes('/photos/')));
    expect(Object.keys(want)).toHaveLength(3);
    expect(JSON.parse(r.stdout.toString())).toEqual(want);
  });

  it('finds names across snapshots and links into the browser', async () => {
    await page.getByRole('link', { name: 'Find', exact: true }).click();
    await page.fill('#find-pattern', 'notes.txt');
    await page.click('#find-run');
    await page.locator('#find-summary').waitFor();
    expect(await page.textContent('#find-summary')).toBe('3 matches in 3 snapshots');
    await shot('find');
    await page.locator('#find-results a', { hasText: 'notes.txt' }).last().click();
    await page.locator('#preview').waitFor();
    expect(await page.textContent('#preview')).toBe('Monday notes\nline two\nline three\n');
  });

  it('compares two snapshots', async () => {
    await page.getByRole('link', { name: 'Compare', exact: true }).click();
    await page.selectOption('#diff-a', ids[0]!);
    await page.selectOption('#diff-b', ids[2]!);
    await page.click('#diff-run');
    await page.locator('#diff-summary').waitFor();
    const table = await page.textContent('#diff-table');
    expect(table).toContain(path.join(src, 'docs', 'notes.txt'));
    expect(table).toContain(path.join(src, 'photos', 'raw.bin'));
    expect(table).toContain(path.join(src, 'docs', 'drafts', 'plan.md'));
    expect(await page.textContent('#diff-summary')).toContain('added 3 files');
    await shot('diff');
  });

  it('restores a file with --allow-restore: the dry-run list first, then the file', async () => {
    const target = path.join(base, 'restored');
    fs.mkdirSync(target);
    const notes = path.join(src, 'docs', 'notes.txt');
    await page.goto(`${ui.origin}/#/browse?s=${ids[0]}&p=${hex(notes)}`);
    await page.click('#restore-file');
    await page.fill('#restore-target', target);
    await page.click('#restore-plan');
    await page.locator('#restore-list').waitFor();
    expect(await page.textContent('#restore-list')).toContain(path.join(target, notes));
    expect(fs.readdirSync(target)).toEqual([]); // the dry run wrote nothing
    await shot('restore');
    await page.click('#restore-go');
    await page.getByText(/^Restored 1 file/).waitFor();
    expect(fs.readFileSync(path.join(target, notes), 'utf8')).toBe('Monday notes\nline two\nline three\n');
  });

  it('reads at phone width in dark mode', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(`${ui.origin}/#/browse?s=${ids[1]}&p=${hex(path.join(src, 'docs'))}`);
    await page.getByRole('link', { name: 'notes.txt' }).waitFor();
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg).toBe('rgb(20, 23, 28)');
    // Nothing wider than the screen but the tables' own scrolling boxes.
    const wide = await page.evaluate(() =>
      [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > 391 && !e.closest('.table-wrap')).map((e) => e.outerHTML.slice(0, 80)),
    );
    expect(wide).toEqual([]);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await shot('phone-dark');
  });
});
