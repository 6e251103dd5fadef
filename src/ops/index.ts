// ops: what a user asks for (create, restore, list, ls, cat, ...), composed from a repository.
export * from './create.js';
export * from './restore.js';
export * from './refs.js';
export * from './navigate.js';
export * from './browse.js';
