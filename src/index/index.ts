// index: the LevelDB index of objects, packs, snapshots and the files cache; derived, rebuildable.
export * from './keys.js';
export * from './files-cache.js';
export * from './level-index.js';
