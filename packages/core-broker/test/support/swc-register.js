// Lets a plain `node` child process run the TypeScript sources, as Jest does through @swc/jest:
//   node -r ./test/support/swc-register.js ./test/store/crash-child.ts …
// Compiles each required .ts file with @swc/core to CommonJS (legacy decorators, like jest.config.js).
const fs = require('node:fs');
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
