// For child processes of the tests: compile TypeScript on require (core-broker's swc hook) and
// resolve @rocketnest/core-broker to its sources, as jest.config.js's moduleNameMapper does.
const Module = require('node:module');
const path = require('node:path');

require('../../../core-broker/test/support/swc-register.js');
const coreBrokerSources = path.join(__dirname, '../../../core-broker/src/index.ts');
const resolve = Module._resolveFilename;
Module._resolveFilename = function resolveFilename(request, ...rest) {
  if (request === '@rocketnest/core-broker') return coreBrokerSources;
  return resolve.call(this, request, ...rest);
};
