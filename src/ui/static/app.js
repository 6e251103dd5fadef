// snap's web page: reads the JSON API (docs/ui.md) and nothing else. Preact + htm, no build step.
import { h, render } from './vendor/preact.mjs';
import { useEffect, useMemo, useRef, useState, useCallback } from './vendor/hooks.mjs';
import htm from './vendor/htm.mjs';

const html = htm.bind(h);

// ---------- API ----------

let CSRF = '';

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function failure(r) {
  let code = 'HTTP_' + r.status;
  let message = r.statusText;
  try {
    const j = await r.json();
    if (j.error) ({ code, message } = j.error);
  } catch {}
  return new ApiError(r.status, code, message);
}

function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    for (const x of Array.isArray(v) ? v : [v]) u.append(k, x);
  }
  return u.toString();
}

async function getJson(path, params = {}, signal) {
  const r = await fetch(`/api/${path}?${qs(params)}`, { signal, credentials: 'same-origin' });
  if (!r.ok) throw await failure(r);
  return r.json();
}

/** A streamed JSON answer (one item per line): calls onLine with the count so far, returns the parsed document. */
async function getStreamed(path, params, signal, onLines) {
  const r = await fetch(`/api/${path}?${qs(params)}`, { signal, credentials: 'same-origin' });
  if (!r.ok) throw await failure(r);
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let text = '';
  let lines = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const s = dec.decode(value, { stream: true });
    for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === 10) lines++;
    text += s;
    onLines?.(lines);
  }
  return JSON.parse(text + dec.decode());
}

async function post(path, body, signal) {
  const r = await fetch(`/api/${path}`, {
    method: 'POST',
    signal,
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-snap-csrf': CSRF },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw await failure(r);
  return r;
}

// ---------- helpers ----------

const enc = new TextEncoder();
const toHex = (s) => [...enc.encode(s)].map((b) => b.toString(16).padStart(2, '0')).join('');
const fromHex = (hex) => new TextDecoder().decode(new Uint8Array((hex.match(/../g) ?? []).map((x) => parseInt(x, 16))));
const ROOT_HEX = toHex('/');

function bytes(n) {
  if (n === undefined || n === null) return '';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${u[i]}`;
}
const when = (iso) => (iso ? iso.replace('T', ' ').replace(/\.\d+/, '').replace(/([+-]\d\d:\d\d|Z)$/, '') : '');
const short = (id) => id.slice(0, 8);
const baseName = (p) => (p === '/' ? '/' : p.replace(/\/+$/, '').split('/').pop());
const parentHex = (hex) => {
  const p = fromHex(hex);
  if (p === '/' || p === '') return ROOT_HEX;
  const up = p.replace(/\/+$/, '').replace(/\/[^/]*$/, '');
  return toHex(up === '' ? '/' : up);
};
/** Where browsing a snapshot starts: its backed-up folder when it has one, else the root. */
const startHex = (s) => (s.paths.length === 1 ? toHex(s.paths[0]) : ROOT_HEX);
const modeText = (e) => (typeof e.mode === 'number' ? e.mode.toString(8).padStart(4, '0') : e.mode);

/** Whether a snapshot's source paths cover a path (so it says something about it). */
function covers(snap, path) {
  if (path === '/') return true;
  return snap.paths.some((src) => src === '/' || path === src || path.startsWith(src.replace(/\/+$/, '') + '/') || src.startsWith(path.replace(/\/+$/, '') + '/'));
}

// ---------- routing (the hash: #/view?key=value) ----------

function parseHash() {
  const h = location.hash.replace(/^#/, '') || '/';
  const [path, query] = h.split('?');
  return { view: path.replace(/^\//, '') || 'timeline', params: Object.fromEntries(new URLSearchParams(query ?? '')) };
}
const link = (view, params = {}) => `#/${view}?${qs(params)}`;
const go = (view, params) => (location.hash = link(view, params));

function useRoute() {
  const [route, setRoute] = useState(parseHash());
  useEffect(() => {
    const on = () => setRoute(parseHash());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

function useAsync(fn, deps) {
  const [state, setState] = useState({ loading: true });
  useEffect(() => {
    const ac = new AbortController();
    setState({ loading: true });
    fn(ac.signal).then(
      (data) => !ac.signal.aborted && setState({ data }),
      (error) => !ac.signal.aborted && setState({ error }),
    );
    return () => ac.abort();
  }, deps);
  return state;
}

const ErrorBox = ({ error }) => html`<p class="error" role="alert">${error.message}${error.code ? html` <span class="muted">[${error.code}]</span>` : ''}</p>`;
const Loading = ({ what }) => html`<p class="loading" role="status">Loading ${what}…</p>`;

// ---------- app ----------

function App() {
  const route = useRoute();
  const [info, setInfo] = useState();
  const [error, setError] = useState();
  const [filter, setFilter] = useState({ host: '', tag: '' });
  const [snaps, setSnaps] = useState();

  useEffect(() => {
    getJson('info').then((i) => {
      CSRF = i.csrf;
      setInfo(i);
    }, setError);
  }, []);
  useEffect(() => {
    getJson('snapshots', filter).then(setSnaps, setError);
  }, [filter.host, filter.tag]);

  if (error) return html`<main><${ErrorBox} error=${error} /></main>`;
  if (!info || !snaps) return html`<${Loading} what="the repository" />`;
  const p = route.params;
  const ctx = { info, snaps, filter };
  let page;
  if (route.view === 'browse') page = html`<${Browse} ...${ctx} snap=${p.s} hex=${p.p ?? ROOT_HEX} />`;
  else if (route.view === 'diff') page = html`<${Diff} ...${ctx} a=${p.a} b=${p.b} hex=${p.p} />`;
  else if (route.view === 'history') page = html`<${History} ...${ctx} hex=${p.p ?? ROOT_HEX} />`;
  else if (route.view === 'find') page = html`<${Find} ...${ctx} q=${p.q} />`;
  else if (route.view === 'restore') page = html`<${Restore} ...${ctx} snap=${p.s} hex=${p.p ?? ROOT_HEX} />`;
  else page = html`<${Timeline} ...${ctx} by=${p.by ?? 'month'} sel=${p.sel} />`;
  return html`
    <header>
      <h1>snap</h1>
      <nav aria-label="views">
        <a href=${link('timeline')} aria-current=${route.view === 'timeline' ? 'page' : undefined}>Timeline</a>
        <a href=${link('diff')} aria-current=${route.view === 'diff' ? 'page' : undefined}>Compare</a>
        <a href=${link('find')} aria-current=${route.view === 'find' ? 'page' : undefined}>Find</a>
      </nav>
      <span class="repo">${info.repository} · ${info.allow_restore ? 'restores allowed' : 'read-only'}</span>
      <div class="filters">
        <label>Host <select id="f-host" value=${filter.host} onChange=${(e) => setFilter({ ...filter, host: e.target.value })}>
          <option value="">all</option>${info.hosts.map((x) => html`<option value=${x}>${x}</option>`)}
        </select></label>
        <label>Tag <select id="f-tag" value=${filter.tag} onChange=${(e) => setFilter({ ...filter, tag: e.target.value })}>
          <option value="">all</option>${info.tags.map((x) => html`<option value=${x}>${x}</option>`)}
        </select></label>
      </div>
    </header>
    <main>${page}</main>`;
}

// ---------- timeline ----------

const ZOOMS = ['day', 'week', 'month', 'year'];

function Timeline({ snaps, filter, by, sel }) {
  const cal = useAsync((signal) => getJson('calendar', { by, ...filter }, signal), [by, filter.host, filter.tag]);
  const [date, setDate] = useState('');
  const [time, setTime] = useState('');
  const [pickError, setPickError] = useState();
  const periods = cal.data ?? [];
  const selected = periods.find((p) => p.period === sel) ?? periods[periods.length - 1];
  const max = Math.max(1, ...periods.map((p) => p.added));
  const inPeriod = selected ? snaps.filter((s) => inBucket(s, selected)) : [];

  const pick = async (e) => {
    e.preventDefault();
    setPickError(undefined);
    if (!date) return;
    try {
      const s = await getJson('resolve', { snapshot: time ? `${date} ${time}` : date, ...filter });
      go('browse', { s: s.id, p: startHex(s) });
    } catch (err) {
      setPickError(err);
    }
  };
  return html`
    <h2>Timeline</h2>
    <form class="row" onSubmit=${pick} aria-label="pick a date">
      <label>Date <input id="pick-date" type="date" value=${date} onInput=${(e) => setDate(e.target.value)} required /></label>
      <label>Time <input id="pick-time" type="time" value=${time} onInput=${(e) => setTime(e.target.value)} /></label>
      <button class="primary" id="pick-go" type="submit">Show files as they were</button>
      <span class="muted">the newest snapshot at or before it</span>
    </form>
    ${pickError && html`<${ErrorBox} error=${pickError} />`}
    <div class="row" role="group" aria-label="zoom">
      ${ZOOMS.map((z) => html`<button aria-pressed=${z === by ? 'true' : 'false'} onClick=${() => go('timeline', { by: z })}>${z}</button>`)}
    </div>
    ${cal.error && html`<${ErrorBox} error=${cal.error} />`}
    ${cal.loading && html`<${Loading} what="the calendar" />`}
    ${cal.data && periods.length === 0 && html`<p>No snapshots${filter.host || filter.tag ? ' match the filters' : ''}.</p>`}
    ${periods.length > 0 &&
    html`
      <div class="chart" role="group" aria-label="bytes added per ${by}">
        ${periods.map(
          (p) => html`<button
            class=${p === selected ? 'selected' : ''}
            style=${{ height: `${Math.max(3, Math.round((p.added / max) * 150))}px` }}
            title=${`${p.period}: ${p.count} snapshot(s), ${bytes(p.added)} added`}
            aria-label=${`${p.period}: ${p.count} snapshots, ${bytes(p.added)} added`}
            onClick=${() => go('timeline', { by, sel: p.period })}
          ></button>`,
        )}
      </div>
      <div class="chart-labels"><span>${periods[0].period}</span><span>bytes added per ${by}</span><span>${periods[periods.length - 1].period}</span></div>
      <h2 style=${{ marginTop: '1rem' }}>${selected.period}: ${selected.count} snapshot${selected.count === 1 ? '' : 's'}, ${bytes(selected.added)} added</h2>
      <${SnapshotChart} snaps=${inPeriod} />
      <${SnapshotTable} snaps=${inPeriod} />`}`;
}

/** Bytes added by each snapshot of a period, one bar each, oldest first: a click browses it. */
function SnapshotChart({ snaps }) {
  if (snaps.length === 0) return null;
  const max = Math.max(1, ...snaps.map((s) => s.summary.dataAdded));
  return html`
    <div class="chart snapchart" role="group" aria-label="bytes added per snapshot">
      ${snaps.map(
        (s) => html`<button
          data-id=${s.id}
          style=${{ height: `${Math.max(3, Math.round((s.summary.dataAdded / max) * 150))}px` }}
          title=${`${when(s.time)}: ${bytes(s.summary.dataAdded)} added`}
          aria-label=${`snapshot ${short(s.id)} at ${when(s.time)}: ${bytes(s.summary.dataAdded)} added`}
          onClick=${() => go('browse', { s: s.id, p: startHex(s) })}
        ></button>`,
      )}
    </div>
    <div class="chart-labels"><span>${when(snaps[0].time)}</span><span>bytes added per snapshot</span><span>${when(snaps[snaps.length - 1].time)}</span></div>`;
}

/** Whether a snapshot falls in a calendar period (by the period's first and newest snapshot times). */
function inBucket(s, p) {
  const t = Date.parse(s.time);
  return t >= Date.parse(p.first.time) && t <= Date.parse(p.newest.time);
}

function SnapshotTable({ snaps }) {
  return html`<div class="table-wrap"><table>
    <thead><tr><th>Snapshot</th><th>Time</th><th class="hide-narrow">Host</th><th class="hide-narrow">Tags</th><th class="num">Size</th><th class="num">Added</th><th class="hide-narrow">Paths</th></tr></thead>
    <tbody>${[...snaps].reverse().map(
      (s) => html`<tr>
        <td><a class="code" href=${link('browse', { s: s.id, p: startHex(s) })}>${short(s.id)}</a></td>
        <td>${when(s.time)}</td><td class="hide-narrow">${s.hostname}</td><td class="hide-narrow">${s.tags.join(', ')}</td>
        <td class="num">${bytes(s.summary.totalBytes)}</td><td class="num">${bytes(s.summary.dataAdded)}</td>
        <td class="hide-narrow name">${s.paths.join(' ')}</td></tr>`,
    )}</tbody></table></div>`;
}

// ---------- browse ----------

function Browse({ info, snaps, filter, snap, hex }) {
  const path = fromHex(hex);
  const current = snaps.find((s) => s.id === snap) ?? snaps.find((s) => s.id.startsWith(snap ?? '~'));
  const idx = current ? snaps.indexOf(current) : -1;
  const relevant = (s) => covers(s, path);
  const older = idx > 0 ? [...snaps.slice(0, idx)].reverse().find(relevant) : undefined;
  const newer = idx >= 0 ? snaps.slice(idx + 1).find(relevant) : undefined;
  const ls = useAsync((signal) => getJson('ls', { snapshot: snap, path_hex: hex, ...filter }, signal), [snap, hex, filter.host, filter.tag]);
  const [typed, setTyped] = useState(path);
  useEffect(() => setTyped(path), [hex]);
  const inputRef = useRef();

  // The keys act on what is shown now: the handler reads the latest values, so a key pressed
  // right after a step (before effects ran again) is not lost.
  const latest = useRef();
  latest.current = { older, newer, hex, snap, path };
  useEffect(() => {
    const onKey = (e) => {
      if (e.target.closest?.('input, select, textarea') || e.ctrlKey || e.metaKey || e.altKey) return;
      const { older, newer, hex, snap, path } = latest.current;
      if (e.key === '[' && older) go('browse', { s: older.id, p: hex });
      else if (e.key === ']' && newer) go('browse', { s: newer.id, p: hex });
      else if (e.key === 'u' && path !== '/') go('browse', { s: snap, p: parentHex(hex) });
      else if (e.key === '/') {
        e.preventDefault();
        inputRef.current?.focus();
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, []);

  const entries = ls.data?.entries ?? [];
  const isFile = entries.length === 1 && entries[0].path_hex === hex && entries[0].type !== 'dir';
  const crumbs = path.split('/').filter(Boolean);
  return html`
    <h2>Files as they were</h2>
    <div class="row">
      <button id="older" disabled=${!older} title="[ key" onClick=${() => go('browse', { s: older.id, p: hex })}>◀ Older${older ? ` (${when(older.time)})` : ''}</button>
      <span><span class="code">${current ? short(current.id) : snap}</span> ${current ? `${when(current.time)} · ${current.hostname}` : ''}</span>
      <button id="newer" disabled=${!newer} title="] key" onClick=${() => go('browse', { s: newer.id, p: hex })}>Newer${newer ? ` (${when(newer.time)})` : ''} ▶</button>
    </div>
    <${DateJump} filter=${filter} hex=${hex} />
    <form class="row" onSubmit=${(e) => (e.preventDefault(), go('browse', { s: snap, p: toHex(typed.startsWith('/') ? typed : '/' + typed) }))}>
      <label>Path <input id="path-input" ref=${inputRef} value=${typed} onInput=${(e) => setTyped(e.target.value)} size="40" /></label>
      <button type="submit">Go</button>
    </form>
    <nav class="crumbs" aria-label="path">
      <a href=${link('browse', { s: snap, p: ROOT_HEX })}>/</a>
      ${crumbs.map((c, i) => html`<span class="sep">›</span><a href=${link('browse', { s: snap, p: toHex('/' + crumbs.slice(0, i + 1).join('/')) })}>${c}</a>`)}
    </nav>
    ${ls.loading && html`<${Loading} what="the folder" />`}
    ${ls.error &&
    html`<${ErrorBox} error=${ls.error} />
      ${ls.error.status === 404 && html`<p class="note">Not in this snapshot. <a href=${link('browse', { s: snap, p: parentHex(hex) })}>Go to the parent folder</a>${older ? html` or <button class="link" onClick=${() => go('browse', { s: older.id, p: hex })}>try an older snapshot</button>` : ''}.</p>`}`}
    ${ls.data && (isFile ? html`<${FileView} info=${info} snap=${snap} entry=${entries[0]} current=${current} older=${older} />` : html`<${Folder} info=${info} snap=${snap} hex=${hex} entries=${entries} older=${older} />`)}`;
}

/** "This folder, as it was on ...": the newest snapshot at or before a date, same path. */
function DateJump({ filter, hex }) {
  const [date, setDate] = useState('');
  const [error, setError] = useState();
  const submit = async (e) => {
    e.preventDefault();
    setError(undefined);
    try {
      const s = await getJson('resolve', { snapshot: date, ...filter });
      go('browse', { s: s.id, p: hex });
    } catch (err) {
      setError(err);
    }
  };
  return html`<form class="row" onSubmit=${submit}>
    <label>This folder on <input id="jump-date" type="date" value=${date} onInput=${(e) => setDate(e.target.value)} required /></label>
    <button type="submit">Go</button>
    ${error && html`<${ErrorBox} error=${error} />`}
  </form>`;
}

// Small inline icons: no emoji font or icon font needed, offline.
const ICON_PATHS = {
  dir: 'M1.5 3.5h4l1.5 1.5h7.5v8h-13z',
  file: 'M3.5 1.5h6l3 3v10h-9z M9.5 1.5v3h3',
  symlink: 'M6 10l4-4 M7 5.5h3.5V9 M3.5 1.5h6l3 3v10h-9z',
  other: 'M8 3.5a4.5 4.5 0 1 0 .01 0z',
};
const Icon = ({ type }) =>
  html`<svg class="icon" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true"><path d=${ICON_PATHS[type] ?? ICON_PATHS.other} fill="none" stroke="currentColor" stroke-width="1.2" /></svg>`;

function Folder({ info, snap, hex, entries, older }) {
  const [sel, setSel] = useState([]);
  useEffect(() => setSel([]), [snap, hex]);
  const toggle = (h) => setSel((x) => (x.includes(h) ? x.filter((y) => y !== h) : [...x, h]));
  const exportUrl = (paths, format) => `/api/export?${qs({ snapshot: snap, path_hex: paths, format })}`;
  return html`
    <div class="row">
      <a id="dl-zip" href=${exportUrl([hex], 'zip')} download>Download folder as .zip</a>
      <a id="dl-tgz" href=${exportUrl([hex], 'tar.gz')} download>.tar.gz</a>
      ${older && html`<a id="diff-older" href=${link('diff', { a: older.id, b: snap, p: hex })}>Compare with older</a>`}
      ${info.allow_restore && html`<a id="restore-folder" href=${link('restore', { s: snap, p: hex })}>Restore…</a>`}
    </div>
    ${sel.length > 0 &&
    html`<div class="row note" role="status">
      ${sel.length} selected:
      <a id="dl-sel-zip" href=${exportUrl(sel, 'zip')} download>download as .zip</a>
      <a id="dl-sel-tgz" href=${exportUrl(sel, 'tar.gz')} download>.tar.gz</a>
      <button class="link" onClick=${() => setSel([])}>clear</button>
    </div>`}
    <div class="table-wrap"><table>
      <thead><tr><th><span class="sr">Select</span></th><th>Name</th><th class="num">Size</th><th class="hide-narrow">Mode</th><th class="hide-narrow">Owner</th><th>Modified</th></tr></thead>
      <tbody>
        ${entries.length === 0 && html`<tr><td colspan="6" class="muted">empty folder</td></tr>`}
        ${entries.map(
          (e) => html`<tr>
            <td><input type="checkbox" aria-label=${`select ${baseName(e.path)}`} checked=${sel.includes(e.path_hex)} onChange=${() => toggle(e.path_hex)} /></td>
            <td class="name"><${Icon} type=${e.type} /> <a href=${link('browse', { s: snap, p: e.path_hex })}>${baseName(e.path)}${e.type === 'dir' ? '/' : ''}</a>${e.target !== undefined ? html` <span class="muted">→ ${e.target}</span>` : ''}${!['dir', 'file', 'symlink'].includes(e.type) ? html` <span class="muted">(${e.type})</span>` : ''}</td>
            <td class="num">${e.type === 'file' ? bytes(e.size) : ''}</td>
            <td class="hide-narrow code">${modeText(e)}</td>
            <td class="hide-narrow">${e.user || e.uid}/${e.group || e.gid}</td>
            <td>${when(e.mtime)}</td></tr>`,
        )}
      </tbody></table></div>`;
}

function FileView({ info, snap, entry, older }) {
  const pv = useAsync((signal) => getJson('preview', { snapshot: snap, path_hex: entry.path_hex }, signal), [snap, entry.path_hex]);
  const params = { snapshot: snap, path_hex: entry.path_hex };
  return html`
    <dl class="meta">
      <dt>Type</dt><dd>${entry.type}</dd>
      <dt>Size</dt><dd>${bytes(entry.size)} (${entry.size} bytes)</dd>
      <dt>Mode</dt><dd class="code">${modeText(entry)}</dd>
      <dt>Owner</dt><dd>${entry.user || entry.uid}/${entry.group || entry.gid}</dd>
      <dt>Modified</dt><dd>${when(entry.mtime)}</dd>
      ${entry.target !== undefined && html`<dt>Target</dt><dd class="code">${entry.target}</dd>`}
    </dl>
    <div class="row">
      ${entry.type === 'file' && html`<a id="dl-file" href=${`/api/cat?${qs(params)}`} download>Download</a>`}
      <a id="history" href=${link('history', { p: entry.path_hex })}>History of this file</a>
      ${older && html`<a href=${link('diff', { a: older.id, b: snap, p: entry.path_hex })}>Compare with older</a>`}
      ${info.allow_restore && html`<a id="restore-file" href=${link('restore', { s: snap, p: entry.path_hex })}>Restore…</a>`}
    </div>
    ${pv.loading && html`<${Loading} what="the preview" />`}
    ${pv.error && html`<${ErrorBox} error=${pv.error} />`}
    ${pv.data?.kind === 'text' && html`<pre id="preview" tabindex="0" aria-label="preview">${pv.data.text}</pre>${pv.data.truncated && html`<p class="muted">Preview shows the beginning only; download for the whole file.</p>`}`}
    ${pv.data?.kind === 'image' && html`<img class="preview" id="preview-img" alt=${baseName(entry.path)} src=${`/api/cat?${qs({ ...params, inline: 1 })}`} />`}
    ${pv.data?.kind === 'binary' && html`<p class="muted">A binary file: no preview.</p>`}`;
}

// ---------- history ----------

function History({ snaps, filter, hex }) {
  const path = fromHex(hex);
  const hist = useAsync((signal) => getJson('history', { path_hex: hex, ...filter }, signal), [hex, filter.host, filter.tag]);
  const [pick, setPick] = useState([]);
  const versions = hist.data?.versions ?? [];
  const toggle = (id) => setPick((p) => (p.includes(id) ? p.filter((x) => x !== id) : [...p, id].slice(-2)));
  return html`
    <h2>History of <span class="code">${path}</span></h2>
    ${hist.loading && html`<${Loading} what="the history" />`}
    ${hist.error && html`<${ErrorBox} error=${hist.error} />`}
    ${versions.length > 0 &&
    html`<div class="table-wrap"><table>
      <thead><tr><th>Compare</th><th>Change</th><th>From snapshot</th><th class="num">Size</th><th>Modified</th><th class="hide-narrow">Seen in</th></tr></thead>
      <tbody>${versions.map(
        (v) => html`<tr>
          <td>${v.entry ? html`<input type="checkbox" aria-label=${`compare version of ${when(v.snapshot.time)}`} checked=${pick.includes(v.snapshot.id)} onChange=${() => toggle(v.snapshot.id)} />` : ''}</td>
          <td class=${`k-${v.event === 'deleted' ? 'removed' : v.event}`}>${v.event}${v.aspects.length ? html` <span class="muted">(${v.aspects.join(', ')})</span>` : ''}</td>
          <td><a href=${link('browse', { s: v.snapshot.id, p: hex })}>${when(v.snapshot.time)}</a> <span class="code muted">${v.snapshot.short_id}</span></td>
          <td class="num">${v.entry?.type === 'file' ? bytes(v.entry.size) : v.entry?.type ?? ''}</td>
          <td>${v.entry ? when(v.entry.mtime) : ''}</td>
          <td class="hide-narrow">${v.seen} snapshot${v.seen === 1 ? '' : 's'}</td></tr>`,
      )}</tbody></table></div>
      ${pick.length === 2 && html`<${SideBySide} hex=${hex} ids=${pick.slice().sort((x, y) => snaps.findIndex((s) => s.id === x) - snaps.findIndex((s) => s.id === y))} />`}`}`;
}

/** Two versions of a text file, side by side, changed lines marked (a line LCS, for previews). */
function SideBySide({ hex, ids }) {
  const both = useAsync((signal) => Promise.all(ids.map((id) => getJson('preview', { snapshot: id, path_hex: hex }, signal))), [hex, ids.join()]);
  if (both.loading) return html`<${Loading} what="both versions" />`;
  if (both.error) return html`<${ErrorBox} error=${both.error} />`;
  const [a, b] = both.data;
  if (a.kind !== 'text' || b.kind !== 'text') return html`<p class="muted">Only text files are compared side by side.</p>`;
  const [la, lb] = lineMarks(a.text.split('\n'), b.text.split('\n'));
  return html`<div class="side" id="side-by-side">
    <div><h3>${when(a.snapshot.time)}</h3><pre>${la.map(([t, m]) => html`<div class=${m ? 'line-del' : ''}>${t || ' '}</div>`)}</pre></div>
    <div><h3>${when(b.snapshot.time)}</h3><pre>${lb.map(([t, m]) => html`<div class=${m ? 'line-add' : ''}>${t || ' '}</div>`)}</pre></div>
  </div>`;
}

function lineMarks(a, b) {
  const n = Math.min(a.length, 3000);
  const m = Math.min(b.length, 3000);
  const dp = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) dp[i][j] = a[i] === b[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
  const ka = new Array(n).fill(true);
  const kb = new Array(m).fill(true);
  for (let i = 0, j = 0; i < n && j < m; ) {
    if (a[i] === b[j]) ((ka[i++] = false), (kb[j++] = false));
    else if (dp[i + 1][j] >= dp[i][j + 1]) i++;
    else j++;
  }
  return [a.slice(0, n).map((t, i) => [t, ka[i]]), b.slice(0, m).map((t, j) => [t, kb[j]])];
}

// ---------- diff ----------

const CODE = { added: '+', removed: '−' };
const SHOWN = 5000;

function Diff({ snaps, filter, a, b, hex }) {
  const [from, setFrom] = useState(a ?? snaps[snaps.length - 2]?.id ?? '');
  const [to, setTo] = useState(b ?? snaps[snaps.length - 1]?.id ?? '');
  const [state, setState] = useState({});
  const acRef = useRef();
  const run = useCallback(async () => {
    acRef.current?.abort();
    const ac = new AbortController();
    acRef.current = ac;
    setState({ running: true, lines: 0 });
    try {
      const data = await getStreamed('diff', { from, to, path_hex: hex, ...filter }, ac.signal, (lines) => setState({ running: true, lines }));
      setState({ data });
    } catch (error) {
      setState(ac.signal.aborted ? { cancelled: true } : { error });
    }
  }, [from, to, hex, filter.host, filter.tag]);
  useEffect(() => {
    if (a && b) run();
    return () => acRef.current?.abort();
  }, [a, b, hex]);
  const options = [...snaps].reverse().map((s) => html`<option value=${s.id}>${short(s.id)} ${when(s.time)} ${s.hostname}</option>`);
  const d = state.data;
  return html`
    <h2>Compare two snapshots${hex ? html`: <span class="code">${fromHex(hex)}</span>` : ''}</h2>
    <form class="row" onSubmit=${(e) => (e.preventDefault(), go('diff', { a: from, b: to, p: hex }), run())}>
      <label>Older <select id="diff-a" value=${from} onChange=${(e) => setFrom(e.target.value)}>${options}</select></label>
      <label>Newer <select id="diff-b" value=${to} onChange=${(e) => setTo(e.target.value)}>${options}</select></label>
      <button class="primary" id="diff-run" type="submit" disabled=${state.running}>Compare</button>
      ${state.running && html`<button type="button" id="diff-cancel" onClick=${() => acRef.current?.abort()}>Cancel</button>`}
    </form>
    ${state.running && html`<p role="status">Comparing… ${state.lines} changes read</p>`}
    ${state.cancelled && html`<p class="note" role="status">Cancelled.</p>`}
    ${state.error && html`<${ErrorBox} error=${state.error} />`}
    ${d &&
    html`<p id="diff-summary" role="status">${summaryText(d.summary)}</p>
      <div class="table-wrap"><table id="diff-table">
        <thead><tr><th></th><th>Path</th><th>Change</th></tr></thead>
        <tbody>${d.changes.slice(0, SHOWN).map(
          (c) => html`<tr class=${`k-${c.kind}`}>
            <td class="code">${c.kind === 'modified' ? (c.aspects.includes('type') ? 'T' : c.aspects.includes('content') ? 'M' : 'U') : CODE[c.kind]}</td>
            <td class="name"><a href=${link('browse', { s: c.kind === 'removed' ? d.from.id : d.to.id, p: c.path_hex })}>${c.path}${c.type === 'dir' ? '/' : ''}</a></td>
            <td>${changeText(c)}</td></tr>`,
        )}</tbody></table></div>
      ${d.changes.length > SHOWN && html`<p class="muted">Showing ${SHOWN} of ${d.changes.length} changes; the API has them all.</p>`}`}`;
}

function changeText(c) {
  const n = c.after ?? c.before;
  if (c.kind !== 'modified') return n.type === 'file' ? bytes(n.size) : n.type;
  if (c.aspects.includes('type')) return `${c.before.type} → ${c.after.type}`;
  const parts = c.aspects.includes('content') ? [`${bytes(c.before.size)} → ${bytes(c.after.size)}`] : [];
  return [...parts, ...c.fields].join(', ');
}

function summaryText(s) {
  const m = s.modified;
  return `added ${s.added.files} files, ${s.added.dirs} folders; removed ${s.removed.files} files, ${s.removed.dirs} folders; modified ${m.content} in content, ${m.metadataOnly} in metadata only, ${m.type} in type`;
}

// ---------- find ----------

const MAX_HITS = 300;

function Find({ filter, q }) {
  const [pattern, setPattern] = useState(q ?? '');
  const [state, setState] = useState({});
  const acRef = useRef();
  useEffect(() => {
    if (!q) return;
    acRef.current?.abort();
    const ac = new AbortController();
    acRef.current = ac;
    setState({ running: true, lines: 0 });
    getStreamed('find', { pattern: q, ...filter }, ac.signal, (lines) => setState({ running: true, lines })).then(
      (data) => setState({ data }),
      (error) => setState(ac.signal.aborted ? { cancelled: true } : { error }),
    );
    return () => ac.abort();
  }, [q, filter.host, filter.tag]);
  const hits = state.data ?? [];
  return html`
    <h2>Find names across snapshots</h2>
    <form class="row" onSubmit=${(e) => (e.preventDefault(), go('find', { q: pattern }))}>
      <label>Pattern <input id="find-pattern" value=${pattern} onInput=${(e) => setPattern(e.target.value)} placeholder="*.txt, /home/*/notes, src/*.ts" required /></label>
      <button class="primary" id="find-run" type="submit">Find</button>
      ${state.running && html`<button type="button" onClick=${() => acRef.current?.abort()}>Cancel</button>`}
    </form>
    ${state.running && html`<p role="status">Searching… ${state.lines} snapshots with matches so far</p>`}
    ${state.cancelled && html`<p class="note" role="status">Cancelled.</p>`}
    ${state.error && html`<${ErrorBox} error=${state.error} />`}
    ${state.data && html`<p role="status" id="find-summary">${hits.reduce((n, h) => n + h.matches.length, 0)} matches in ${hits.length} snapshots</p>`}
    <div id="find-results">${[...hits].reverse().slice(0, MAX_HITS).map(
      (h) => html`<section>
        <h3><a href=${link('browse', { s: h.snapshot.id, p: startHex(h.snapshot) })}>${when(h.snapshot.time)}</a> <span class="code muted">${h.snapshot.short_id}</span> <span class="muted">${h.snapshot.hostname}</span></h3>
        <ul>${h.matches.slice(0, 50).map((m) => html`<li><a href=${link('browse', { s: h.snapshot.id, p: m.path_hex })}>${m.path}${m.type === 'dir' ? '/' : ''}</a> <span class="muted">${m.type === 'file' ? bytes(m.size) : m.type}</span></li>`)}
        ${h.matches.length > 50 && html`<li class="muted">and ${h.matches.length - 50} more</li>`}</ul>
      </section>`,
    )}</div>`;
}

// ---------- restore ----------

function Restore({ info, snaps, snap, hex }) {
  const path = fromHex(hex);
  const current = snaps.find((s) => s.id === snap);
  const [where, setWhere] = useState('original');
  const [folder, setFolder] = useState('');
  const [overwrite, setOverwrite] = useState('never');
  const [plan, setPlan] = useState();
  const [job, setJob] = useState();
  const [error, setError] = useState();
  const target = where === 'original' ? '/' : folder;
  const body = { snapshot: snap, paths_hex: path === '/' ? [] : [hex], target, overwrite };
  useEffect(() => setPlan(undefined), [where, folder, overwrite]);

  if (!info.allow_restore) return html`<p class="note">This server is read-only: start it with <code>snap ui --allow-restore</code> to restore from the page.</p>`;
  const dryRun = async (e) => {
    e.preventDefault();
    setError(undefined);
    setJob(undefined);
    try {
      const r = await post('restore', { ...body, dry_run: true });
      setPlan(await r.json());
    } catch (err) {
      setError(err);
    }
  };
  const start = async () => {
    setError(undefined);
    try {
      const r = await post('restore', { ...body, dry_run: false });
      const { job: id } = await r.json();
      setJob({ id, state: 'running', progress: { files: 0, bytes: 0 } });
      for (;;) {
        await new Promise((res) => setTimeout(res, 300));
        const j = await getJson(`jobs/${id}`);
        setJob(j);
        if (j.state !== 'running') break;
      }
    } catch (err) {
      setError(err);
    }
  };
  const cancel = () => job && post(`jobs/${job.id}/cancel`, {}).catch(setError);
  return html`
    <h2>Restore <span class="code">${path}</span></h2>
    <p>From snapshot <span class="code">${short(snap ?? '')}</span> ${current ? when(current.time) : ''}. Each path is restored at <em>target</em>/<em>its path</em>, as <code>snap restore</code> does.</p>
    <form onSubmit=${dryRun}>
      <div class="row" role="radiogroup" aria-label="where">
        <label><input type="radio" name="where" checked=${where === 'original'} onChange=${() => setWhere('original')} /> Its original place</label>
        <label><input type="radio" id="where-folder" name="where" checked=${where === 'folder'} onChange=${() => setWhere('folder')} /> Under the folder</label>
        <input id="restore-target" aria-label="target folder" placeholder="/home/me/restored" value=${folder} onInput=${(e) => (setFolder(e.target.value), setWhere('folder'))} size="36" />
      </div>
      <div class="row"><label>Existing files that differ <select id="restore-overwrite" value=${overwrite} onChange=${(e) => setOverwrite(e.target.value)}>
        <option value="never">keep them (never overwrite)</option><option value="if-changed">overwrite if changed</option><option value="always">always overwrite</option>
      </select></label></div>
      <div class="row"><button id="restore-plan" type="submit">Show what would be restored</button></div>
    </form>
    ${error && html`<${ErrorBox} error=${error} />`}
    ${plan &&
    html`<h3>Would restore ${plan.files} file(s) (${bytes(plan.bytes)}), ${plan.dirs} folder(s)${plan.unchanged ? `; ${plan.unchanged} already identical` : ''}</h3>
      <div class="table-wrap"><table id="restore-list"><thead><tr><th>Type</th><th>Path</th><th class="num">Size</th></tr></thead>
      <tbody>${plan.entries.slice(0, 2000).map((e) => html`<tr><td>${e.type}</td><td class="name code">${e.path}</td><td class="num">${e.type === 'file' ? bytes(e.size) : ''}</td></tr>`)}</tbody></table></div>
      <div class="row"><button class="primary" id="restore-go" disabled=${job?.state === 'running'} onClick=${start}>Restore now</button></div>`}
    ${job &&
    html`<div role="status" id="restore-status">
      ${job.state === 'running' && html`<p>Restoring… ${job.progress.files} files, ${bytes(job.progress.bytes)}</p><progress max=${plan?.bytes || 1} value=${job.progress.bytes}></progress> <button id="restore-cancel" onClick=${cancel}>Cancel</button>`}
      ${job.state === 'done' && html`<p class="note">Restored ${job.result.files} file(s) (${bytes(job.result.bytes)}), ${job.result.dirs} folder(s) to ${job.result.target}${job.result.unchanged ? `; ${job.result.unchanged} already identical` : ''}${job.result.skipped ? `; ${job.result.skipped} skipped` : ''}.</p>`}
      ${job.state === 'cancelled' && html`<p class="note">Cancelled.</p>`}
      ${job.state === 'failed' && html`<${ErrorBox} error=${job.error} />`}
      ${job.warnings?.length > 0 && html`<ul>${job.warnings.map((w) => html`<li>${w.message}</li>`)}</ul>`}
    </div>`}`;
}

render(html`<${App} />`, document.getElementById('app'));
