// The conformance suite against LocalBackend, each test in a fresh temporary folder.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll } from 'vitest';
import { LocalBackend } from '../../src/backend/local.js';
import { backendConformance } from './conformance.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

backendConformance('LocalBackend', {
  async make() {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-backend-'));
    dirs.push(d);
    return new LocalBackend(path.join(d, 'repo'));
  },
});
