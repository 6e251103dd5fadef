// store: turns bytes into content-addressed objects (chunking, compression, packs) and back.
export * from './chunker.js';
export * from './file-chunker.js';
export * from './codec.js';
export * from './pack.js';
export * from './object-store.js';
