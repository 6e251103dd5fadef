// The layering rules docs/design.md states, checked on the source (issue 17): only cli/ touches
// `process`; ops/ and cli/ never import backend/ or index/ (repo/ owns storage work); and a
// repository is opened with host facts the caller made (cli/host.ts), never ones read below cli/.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Repository } from '../src/repo/repository.js';
import { ROOT, tmpDir } from './helpers/cli.js';

const SRC = path.join(ROOT, 'src');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.(ts|mts)$/.test(e.name) ? [p] : [];
  });
}

/** The code of a file without its comments and string contents (so prose may name `process`). */
function code(file: string): string {
  return fs
    .readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"/g, "''")
    .replace(/(^|[^:\\])\/\/.*$/gm, '$1');
}

const rel = (f: string): string => path.relative(SRC, f);

describe('layers', () => {
  it('only cli/ touches process', () => {
    const offenders = sources(SRC)
      .filter((f) => !rel(f).startsWith('cli/'))
      .filter((f) => /(?<![\w.])process\s*[.[]/.test(code(f)))
      .map(rel);
    expect(offenders).toEqual([]);
  });

  it('ops/ and cli/ import neither backend/ nor index/', () => {
    const offenders: string[] = [];
    for (const f of sources(SRC).filter((f) => /^(ops|cli)\//.test(rel(f)))) {
      for (const m of fs.readFileSync(f, 'utf8').matchAll(/from\s+'([^']+)'/g)) {
        const target = path.relative(SRC, path.resolve(path.dirname(f), m[1]!));
        if (m[1]!.startsWith('.') && /^(backend|index)\//.test(target)) offenders.push(`${rel(f)} -> ${target}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it("a repository opened without host facts is refused (SNAP_INTERNAL), not given the process's own", async () => {
    const root = path.join(tmpDir(), 'repo');
    await expect(Repository.init(root, { sink: {} } as unknown as Parameters<typeof Repository.init>[1])).rejects.toMatchObject({ code: 'SNAP_INTERNAL' });
  });
});
