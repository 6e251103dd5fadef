import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { ErrorCodes } from '../src/core/errors.js';
import { ROOT } from './helpers/cli.js';

it('docs/errors.md documents every error code, and only those', () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'errors.md'), 'utf8');
  const table = doc.slice(doc.indexOf('## Error codes'), doc.indexOf('## Warnings'));
  const documented = [...table.matchAll(/^\| `(SNAP_[A-Z_]+)` \|/gm)].map((m) => m[1]);
  expect(documented.sort()).toEqual(Object.keys(ErrorCodes).sort());
});
