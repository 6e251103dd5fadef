// Every test file's worker: the zstd implementation ready before the first test (the CLI's entry
// point awaits zstdReady() itself; tests call the codec directly). See store/zstd.ts.
import { beforeAll } from 'vitest';
import { zstdReady } from '../src/store/zstd.js';

beforeAll(() => zstdReady());
