// Exclude patterns in .gitignore syntax, matched against raw path bytes (as latin1 strings, a
// lossless mapping, so names that are not UTF-8 can still be matched):
//   `name` (no slash) matches that name at any depth; `/x` or `a/b` is anchored at the source root;
//   a trailing `/` matches directories only; `*` and `?` stay within one path component;
//   `**` spans components; `[abc]` classes; a leading `!` re-includes; `#` starts a comment.
// The last matching pattern wins, as in git. A pattern that starts with `/` also matches the
// absolute path when one is given (`--exclude /home/you/x` means that path, as users expect),
// besides its .gitignore meaning (anchored at the source root).
import { fsEncode } from '../core/bytes.js';

export interface ExcludeRule {
  re: RegExp;
  negate: boolean;
  dirOnly: boolean;
  source: string;
  /** Started with `/`: matched against the absolute path too. */
  rooted: boolean;
  /** How often this rule decided a path (for reporting patterns that matched nothing). */
  hits: number;
}

export function compileExcludes(patterns: string[]): ExcludeRule[] {
  const rules: ExcludeRule[] = [];
  for (const raw of patterns) {
    let p = raw.replace(/(?<!\\)\s+$/, '');
    if (p === '' || p.startsWith('#')) continue;
    let negate = false;
    if (p.startsWith('!')) {
      negate = true;
      p = p.slice(1);
    } else if (p.startsWith('\\!') || p.startsWith('\\#')) p = p.slice(1);
    let dirOnly = false;
    if (p.endsWith('/')) {
      dirOnly = true;
      p = p.slice(0, -1);
    }
    const anchored = p.includes('/');
    const rooted = p.startsWith('/');
    if (rooted) p = p.slice(1);
    const body = globToRegex(fsEncode(p).toString('latin1'));
    const re = new RegExp(anchored ? `^${body}$` : `(?:^|/)${body}$`, 's');
    rules.push({ re, negate, dirOnly, source: raw, rooted, hits: 0 });
  }
  return rules;
}

function globToRegex(g: string): string {
  let out = '';
  for (let i = 0; i < g.length; i++) {
    const c = g[i]!;
    if (c === '*') {
      if (g[i + 1] === '*') {
        const slashAfter = g[i + 2] === '/';
        const atStart = i === 0 || g[i - 1] === '/';
        if (atStart && slashAfter) {
          out += '(?:.*/)?';
          i += 2;
        } else {
          out += '.*';
          i += 1;
        }
      } else out += '[^/]*';
    } else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const end = g.indexOf(']', i + 2);
      if (end < 0) out += '\\[';
      else {
        let cls = g.slice(i + 1, end);
        if (cls.startsWith('!')) cls = '^' + cls.slice(1);
        out += `[${cls.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < g.length) {
      out += escapeRe(g[i + 1]!);
      i++;
    } else out += escapeRe(c);
  }
  return out;
}

function escapeRe(c: string): string {
  return /[.+^${}()|[\]\\*?]/.test(c) ? `\\${c}` : c;
}

/**
 * Whether a path (relative to the source root, '/'-separated, as a latin1 string of its bytes)
 * is excluded. A directory's exclusion also covers everything below it: the walk never enters it.
 * `absPath` (the absolute path without its leading `/`, latin1) is tried by rooted rules.
 */
export function isExcluded(rules: ExcludeRule[], relPath: string, isDir: boolean, absPath?: string): boolean {
  let excluded = false;
  for (const r of rules) {
    if (r.dirOnly && !isDir) continue;
    if (r.negate === excluded && (r.re.test(relPath) || (r.rooted && absPath !== undefined && r.re.test(absPath)))) {
      excluded = !r.negate;
      r.hits++;
    }
  }
  return excluded;
}

/** Whether any rule needs absolute paths (so callers build them only then). */
export function needsAbsolute(rules: ExcludeRule[]): boolean {
  return rules.some((r) => r.rooted);
}

/** The patterns that decided no path at all: most likely a typo, or a path outside the sources. */
export function unmatched(rules: ExcludeRule[]): string[] {
  return rules.filter((r) => r.hits === 0).map((r) => r.source);
}
