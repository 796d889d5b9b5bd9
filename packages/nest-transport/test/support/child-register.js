// For child processes of the tests (the hybrid app, the README example): compile TypeScript on
// require with swc, as jest.config.js does (CommonJS, legacy decorators, decorator metadata), and
// resolve the workspace packages to their sources, as its moduleNameMapper does. Bare imports of a
// file outside this package (the README example in a temp dir) resolve from this package, where
// @nestjs/* and rxjs are installed.
const fs = require('node:fs');
const Module = require('node:module');
const path = require('node:path');
const { transformSync } = require('@swc/core');

require.extensions['.ts'] = function compileTypeScript(module, filename) {
  const { code } = transformSync(fs.readFileSync(filename, 'utf8'), {
    filename,
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  });
  module._compile(code, filename);
};

const packageDir = path.join(__dirname, '../..');
const sources = {
  '@rocketnest/core-broker': path.join(packageDir, '../core-broker/src/index.ts'),
  '@rocketnest/core-broker/broker': path.join(packageDir, '../core-broker/src/entries/broker.ts'),
  '@rocketnest/core-broker/push': path.join(packageDir, '../core-broker/src/entries/push.ts'),
  '@rocketnest/core-broker/outbox': path.join(packageDir, '../core-broker/src/entries/outbox.ts'),
  '@rocketnest/core-broker/internal': path.join(packageDir, '../core-broker/src/internal.ts'),
  '@rocketnest/nest-transport': path.join(packageDir, 'src/index.ts'),
};
const resolve = Module._resolveFilename;
Module._resolveFilename = function resolveFilename(request, parent, isMain, options) {
  if (sources[request]) return sources[request];
  // the push client's CommonJS twin exists only in a build; Node requires the ES module itself
  if (request.endsWith('/push-client.cjs'))
    return path.join(packageDir, '../core-broker/src/push/client/push-client.mjs');
  try {
    return resolve.call(this, request, parent, isMain, options);
  } catch (error) {
    if (request.startsWith('.') || path.isAbsolute(request)) throw error;
    return resolve.call(this, request, parent, isMain, { paths: [packageDir] });
  }
};
