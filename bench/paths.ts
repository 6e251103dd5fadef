// Where things are, resolved from this file's location (never from the caller's cwd).
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (the folder holding package.json). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The shared benchmark kit (corpus builder, mutator), a sibling of the project: `../shared/bench-kit`. */
export const BENCH_KIT = process.env.SNAP_BENCH_KIT ?? path.resolve(REPO_ROOT, '..', 'shared', 'bench-kit');

export const PERFORMANCE_MD = path.join(REPO_ROOT, 'docs', 'performance.md');
export const PERFORMANCE_SVG = path.join(REPO_ROOT, 'docs', 'performance.svg');
export const RESULTS_DIR = path.join(REPO_ROOT, 'bench', 'results');

export function kitScript(name: string): string {
  return path.join(BENCH_KIT, name);
}
