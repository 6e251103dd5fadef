// Date references for snapshot arguments (see docs/retention.md). Wired to model/when.ts.
import type { WhenParser } from '../ops/refs.js';

export const whenParser: WhenParser | undefined = undefined;
