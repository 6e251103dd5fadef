// model: the records snap stores (trees, nodes, snapshots, config) and pure rules over them.
export * from './cbor.js';
export * from './node.js';
export * from './tree.js';
export * from './snapshot.js';
export * from './config.js';
