// Preloaded with `node -r` to run the CLI as on a machine where the optional package
// @napi-rs/xattr is not installed: its resolution fails the way a missing package's does.
const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === '@napi-rs/xattr') {
    const e = new Error(`Cannot find module '${request}'`);
    e.code = 'MODULE_NOT_FOUND';
    throw e;
  }
  return resolve.call(this, request, ...rest);
};
