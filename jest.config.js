// One Jest run for every package. swc compiles TypeScript to CommonJS with legacy decorators and
// decorator metadata (what Nest needs); Nest 12 and its dependencies ship ESM only, so swc
// transforms them too instead of Jest's default "never transform node_modules".
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'commonjs' },
  },
];
const esmOnly = [
  '@nestjs',
  'uid',
  'iterare',
  'load-esm',
  'file-type',
  'strtok3',
  'token-types',
  '@tokenizer',
  'uint8array-extras',
];

module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/packages', '<rootDir>/apps'].filter((p) =>
    require('fs').existsSync(p.replace('<rootDir>', __dirname)),
  ),
  testMatch: ['**/test/**/*.test.ts'],
  transform: { '^.+\\.(t|j|mj)s$': swc },
  // packages import each other by name; tests run the sources, not the built dist
  moduleNameMapper: {
    '^@rocketnest/core-broker$': '<rootDir>/packages/core-broker/src/index.ts',
    '^@rocketnest/core-broker/broker$': '<rootDir>/packages/core-broker/src/entries/broker.ts',
    '^@rocketnest/core-broker/push$': '<rootDir>/packages/core-broker/src/entries/push.ts',
    '^@rocketnest/core-broker/push-client$': '<rootDir>/packages/core-broker/src/push/client/push-client.mjs',
    '^@rocketnest/core-broker/outbox$': '<rootDir>/packages/core-broker/src/entries/outbox.ts',
    '^@rocketnest/core-broker/internal$': '<rootDir>/packages/core-broker/src/internal.ts',
    // the CommonJS twin of the push client is generated at build time (scripts/build-push-client.js)
    '/push-client\\.cjs$': '<rootDir>/packages/core-broker/src/push/client/push-client.mjs',
    '^@rocketnest/testing$': '<rootDir>/packages/testing/src/index.ts',
    '^@rocketnest/testing/nest$': '<rootDir>/packages/testing/src/nest/index.ts',
    '^@rocketnest/testing/jest$': '<rootDir>/packages/testing/src/jest/index.ts',
    '^@rocketnest/nest-transport$': '<rootDir>/packages/nest-transport/src/index.ts',
    '^@rocketnest/express$': '<rootDir>/packages/express/src/index.ts',
  },
  transformIgnorePatterns: [`/node_modules/(?!(\\.pnpm/)?(${esmOnly.join('|')}))`],
  // A bound on a hung test, not a performance check: many tests start processes, and a loaded
  // 2-core machine (CI shares it) can take tens of seconds to start a few of them.
  testTimeout: 60000,
};
