import * as os from 'node:os';
import { expect, it } from 'vitest';

it('tests write under the run-scoped temporary folder that global setup removes', () => {
  expect(os.tmpdir()).toMatch(/snap-tests-[^/]+$/);
});
