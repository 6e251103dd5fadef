// repo: opens, creates and composes a repository (backend, config, object store, index).
export * from './layout.js';
export * from './repository.js';
