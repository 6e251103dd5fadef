// Date references for snapshot arguments (syntax in docs/retention.md): the local time zone.
import { parseWhen } from '../model/when.js';
import type { WhenParser } from '../ops/refs.js';

export const whenParser: WhenParser = (text, now) => parseWhen(text, now);
