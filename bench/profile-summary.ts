// Summarise a V8 CPU profile (`node --cpu-prof`): self time per function and per source file.
// usage: node --import tsx bench/profile-summary.ts FILE.cpuprofile [TOP]
import * as fs from 'node:fs';
import * as path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface Entry {
  name: string;
  ms: number;
  share: number;
}

/** Self time per key (function or file), largest first. */
export function selfTimes(p: CpuProfile, key: (n: ProfileNode) => string): Entry[] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const ms = new Map<string, number>();
  p.samples.forEach((id, i) => {
    const n = byId.get(id);
    if (!n) return;
    const k = key(n);
    ms.set(k, (ms.get(k) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  });
  const total = (p.endTime - p.startTime) / 1000;
  return [...ms].map(([name, t]) => ({ name, ms: t, share: t / total })).sort((a, b) => b.ms - a.ms);
}

/** Paths from node_modules/ (first occurrence) or from the project's dist/; node: URLs as they are. */
function shortUrl(url: string): string {
  if (url === '') return '(native)';
  const p = url.replace(/^file:\/\//, '');
  const nm = p.indexOf('/node_modules/');
  if (nm >= 0) return p.slice(nm + 1);
  const dist = p.lastIndexOf('/dist/');
  return dist >= 0 ? p.slice(dist + 1) : p;
}

export const byFunction = (n: ProfileNode): string =>
  `${n.callFrame.functionName || '(anonymous)'} ${shortUrl(n.callFrame.url)}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
export const byFile = (n: ProfileNode): string => shortUrl(n.callFrame.url);

function main(): void {
  process.stdout.on('error', () => process.exit(0)); // e.g. piped into head
  const [file, top = '15'] = process.argv.slice(2);
  if (!file) throw new Error('usage: profile-summary.ts FILE.cpuprofile [TOP]');
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const print = (title: string, rows: Entry[]): void => {
    process.stdout.write(`${title}\n`);
    for (const r of rows.slice(0, Number(top))) process.stdout.write(`${r.ms.toFixed(0).padStart(8)} ms ${(r.share * 100).toFixed(1).padStart(5)}%  ${r.name}\n`);
  };
  process.stdout.write(`${path.basename(file)}: ${((p.endTime - p.startTime) / 1e6).toFixed(2)} s on the main thread\n`);
  print('self time by function', selfTimes(p, byFunction));
  print('self time by file', selfTimes(p, byFile));
}

main();
