// core: ids, errors, clock and progress reporting; everything else builds on these.
export * from './errors.js';
export * from './ids.js';
export * from './clock.js';
export * from './progress.js';
export * from './bytes.js';
export * from './host.js';
export * from './pool.js';
