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
  // the clients sit above the wire, not above the broker: a TCP-only client must not load the
  // broker and its store. The one exception is the in-process transport (see `exceptions`).
  client: ['common', 'message', 'remoting', 'rocketmq5', 'filter'],
  // opening a connection: a transport handed in, TCP, or an embedded broker (loaded on demand)
  connection: ['common', 'message', 'client', 'broker', 'store', 'driver'],
  // the driver contract and its targets: RocketNest's clients over any transport, Apache RocketMQ 5 over gRPC
  driver: ['common', 'message', 'client', 'rocketmq5'],
  // the relay publishes through a Producer, or opens an Apache driver producer (its `apache` option)
  outbox: ['common', 'message', 'client', 'driver'],
  // the push server reads queues through a client transport, or topics through a driver (Apache)
  push: ['common', 'message', 'client', 'filter', 'driver'],
  server: ['common', 'message', 'remoting', 'rocketmq5', 'broker', 'filter', 'store', 'namesrv'],
};
const src = '^packages/core-broker/src/';
// Single files that may import more than their layer: file (under src/) → extra layers.
const exceptions = {
  // calls the broker directly: the embedded front end
  'client/in-process-transport.ts': ['broker'],
};
const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
    ...Object.entries(allowed).map(([layer, deps]) => {
      const excepted = Object.keys(exceptions)
        .filter((file) => file.startsWith(`${layer}/`))
        .map((file) => `${src}${escapeRegExp(file)}$`);
      return {
        name: `layer-${layer}`,
        comment: `${layer}/ may import only: ${deps.join(', ') || 'nothing'} (DESIGN.md layer table)`,
        severity: 'error',
        from: { path: `${src}${layer}/`, ...(excepted.length > 0 ? { pathNot: excepted } : {}) },
        to: { path: src, pathNot: [`${src}(${[layer, ...deps].join('|')})/`] },
      };
    }),
    ...Object.entries(exceptions).map(([file, extra]) => {
      const layer = file.split('/')[0];
      const deps = [layer, ...allowed[layer], ...extra];
      return {
        name: `layer-exception-${file}`,
        comment: `${file} may import only: ${deps.join(', ')} (DESIGN.md layer table, named exception)`,
        severity: 'error',
        from: { path: `${src}${escapeRegExp(file)}$` },
        to: { path: src, pathNot: [`${src}(${deps.join('|')})/`] },
      };
    }),
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
