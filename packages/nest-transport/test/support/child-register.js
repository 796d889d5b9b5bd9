// For child processes of the tests: compile TypeScript on require (core-broker's swc hook) and
// resolve the workspace packages to their sources, as jest.config.js's moduleNameMapper does.
// Bare imports of a file outside this package (the README example in a temp dir) are resolved
// from this package, where @nestjs/* and rxjs are installed.
const Module = require('node:module');
const path = require('node:path');

require('../../../core-broker/test/support/swc-register.js');
const packageDir = path.join(__dirname, '../..');
const sources = {
  '@rocketnest/core-broker': path.join(packageDir, '../core-broker/src/index.ts'),
  '@rocketnest/nest-transport': path.join(packageDir, 'src/index.ts'),
};
const resolve = Module._resolveFilename;
Module._resolveFilename = function resolveFilename(request, parent, isMain, options) {
  if (sources[request]) return sources[request];
  try {
    return resolve.call(this, request, parent, isMain, options);
  } catch (error) {
    if (request.startsWith('.') || path.isAbsolute(request)) throw error;
    return resolve.call(this, request, parent, isMain, { paths: [packageDir] });
  }
};
