// A grouped bar chart of wall time per step and tool, as a hand-written SVG string.
import { fix } from './format.js';
import type { Row } from './results.js';
import { measured, rowsOf, spread, wall } from './stats.js';
import { STEP_SHORT, STEPS } from './steps.js';

const COLORS: Record<string, string> = { snap: '#2f7ed8', restic: '#e4572e', borg: '#76b041' };
const FALLBACK = ['#8e6cbe', '#f2a541', '#555555'];

const W = 880;
const H = 420;
const M = { left: 56, right: 16, top: 44, bottom: 64 };

interface Bar {
  tool: string;
  median?: number;
  min?: number;
  max?: number;
  label: string;
}

export function wallChart(rows: Row[], tools: string[], title: string): string {
  const groups = STEPS.map((step) => ({ step, bars: tools.map((tool) => bar(rows, tool, step)) }));
  const top = niceMax(Math.max(1, ...groups.flatMap((g) => g.bars.map((b) => b.max ?? 0))));
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const y = (v: number): number => M.top + plotH - (v / top) * plotH;
  const groupW = plotW / groups.length;
  const barW = Math.min(28, (groupW * 0.8) / tools.length);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
    ...axis(top, y, plotW),
    ...legend(tools),
  ];
  groups.forEach((g, gi) => {
    const x0 = M.left + gi * groupW + (groupW - barW * tools.length) / 2;
    g.bars.forEach((b, bi) => parts.push(...drawBar(b, x0 + bi * barW, barW, y, colorOf(b.tool, bi))));
    parts.push(`<text x="${M.left + (gi + 0.5) * groupW}" y="${H - M.bottom + 16}" text-anchor="middle">${esc(STEP_SHORT[g.step])}</text>`);
  });
  parts.push(`<text x="${W / 2}" y="${H - 12}" text-anchor="middle" fill="#555">bars: median wall time; whiskers: min–max over rounds; lower is better</text>`, '</svg>');
  return parts.join('\n') + '\n';
}

function bar(rows: Row[], tool: string, step: (typeof STEPS)[number]): Bar {
  const s = spread(measured(rows, tool, step).map(wall));
  if (s) return { tool, median: s.median, min: s.min, max: s.max, label: fix(s.median) };
  const any = rowsOf(rows, tool, step)[0];
  return { tool, label: any ? (any.status === 'n/a' ? 'n/a' : 'failed') : '' };
}

function drawBar(b: Bar, x: number, w: number, y: (v: number) => number, color: string): string[] {
  const cx = x + w / 2;
  if (b.median === undefined) {
    return [`<text x="${cx}" y="${y(0) - 4}" text-anchor="middle" font-size="9" fill="#888" transform="rotate(-90 ${cx} ${y(0) - 4})" dx="14">${esc(b.label)}</text>`];
  }
  const out = [
    `<rect x="${x + 1}" y="${y(b.median)}" width="${w - 2}" height="${y(0) - y(b.median)}" fill="${color}"><title>${esc(`${b.tool}: ${b.label} s`)}</title></rect>`,
  ];
  if (b.min !== undefined && b.max !== undefined && b.max > b.min) {
    out.push(`<path d="M${cx} ${y(b.min)}V${y(b.max)}M${cx - 3} ${y(b.min)}h6M${cx - 3} ${y(b.max)}h6" stroke="#222" fill="none"/>`);
  }
  out.push(`<text x="${cx}" y="${y(b.max ?? b.median) - 4}" text-anchor="middle" font-size="9">${esc(b.label)}</text>`);
  return out;
}

function axis(top: number, y: (v: number) => number, plotW: number): string[] {
  const out = [`<text x="14" y="${M.top + (H - M.top - M.bottom) / 2}" transform="rotate(-90 14 ${M.top + (H - M.top - M.bottom) / 2})" text-anchor="middle">seconds</text>`];
  const step = top / 5;
  for (let v = 0; v <= top + 1e-9; v += step) {
    out.push(`<line x1="${M.left}" x2="${M.left + plotW}" y1="${y(v)}" y2="${y(v)}" stroke="${v === 0 ? '#333' : '#e3e3e3'}"/>`);
    out.push(`<text x="${M.left - 6}" y="${y(v) + 4}" text-anchor="end">${Number(v.toFixed(2))}</text>`);
  }
  return out;
}

function legend(tools: string[]): string[] {
  return tools.flatMap((t, i) => {
    const x = M.left + i * 90;
    return [`<rect x="${x}" y="28" width="12" height="12" fill="${colorOf(t, i)}"/>`, `<text x="${x + 16}" y="38">${esc(t)}</text>`];
  });
}

function colorOf(tool: string, i: number): string {
  return COLORS[tool] ?? FALLBACK[i % FALLBACK.length]!;
}

/** The smallest of 1, 2, 2.5, 5 × 10^k at or above x. */
function niceMax(x: number): number {
  const p = 10 ** Math.floor(Math.log10(x));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((v) => v >= x)!;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
