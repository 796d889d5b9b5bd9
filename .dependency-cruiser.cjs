// The layer order of DESIGN.md for packages/core-broker/src, enforced in the test command.
// `common/` (errors, assertions, clock) sits below every layer; each layer may import the
// layers listed here and nothing above them.
const allowed = {
  common: [],
  message: ['common'],
  filter: ['common', 'message'],
  store: ['common', 'message'],
  broker: ['common', 'message', 'store', 'filter'],
  namesrv: ['common', 'message'],
  remoting: ['common', 'message'],
  // the RocketMQ 5 gRPC protocol (schema, codec, status codes, ids), shared by the gRPC front end and driver
  rocketmq5: ['common', 'message'],
  client: ['common', 'message', 'remoting', 'rocketmq5', 'broker', 'filter'],
  outbox: ['common', 'message', 'client'],
  push: ['common', 'message', 'client', 'filter'],
  server: ['common', 'message', 'remoting', 'rocketmq5', 'broker', 'filter', 'store', 'namesrv'],
};
const src = '^packages/core-broker/src/';

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
    ...Object.entries(allowed).map(([layer, deps]) => ({
      name: `layer-${layer}`,
      comment: `${layer}/ may import only: ${deps.join(', ') || 'nothing'} (DESIGN.md layer table)`,
      severity: 'error',
      from: { path: `${src}${layer}/` },
      to: { path: src, pathNot: [`${src}(${[layer, ...deps].join('|')})/`] },
    })),
    {
      name: 'packages-by-name',
      comment:
        'the other packages use core-broker through its package name (its public index), never its files',
      severity: 'error',
      from: { path: '^packages/(?!core-broker/)[^/]+/' },
      to: { path: '^packages/core-broker/(src|test)/' },
    },
    {
      name: 'src-not-from-tests',
      severity: 'error',
      from: { path: '^packages/[^/]+/src/' },
      to: { path: '^packages/[^/]+/(test|bench)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(dist|node_modules)/' },
    tsConfig: { fileName: 'tsconfig.base.json' },
    tsPreCompilationDeps: true,
  },
};
