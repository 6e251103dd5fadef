// backend: where blobs live (a local directory now, remote object storage later).
export * from './backend.js';
export * from './local.js';
export * from './sftp.js';
export * from './sftp-location.js';
