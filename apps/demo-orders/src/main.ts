// `pnpm demo`: the order and payment services in one process, on an embedded broker with a local
// data directory (or a standalone broker / cluster when ROCKETNEST_NAMESRV is set).
import 'reflect-metadata';
import { DemoConfigError, demoConfigFromEnv, isMysqlUrl } from './demo-config';
import { startDemo } from './demo-app';

/** How long a signal waits for the services to stop before the process exits anyway. */
const STOP_TIMEOUT_MS = 10_000;

async function main(): Promise<void> {
  const config = demoConfigFromEnv();
  const demo = await startDemo(config);
  console.log(`RocketNest demo: order service listening on ${demo.url}`);
  console.log(
    config.nameServers
      ? `  broker: name servers ${config.nameServers.join(', ')}`
      : `  broker: embedded, data in ${config.dataDir}`,
  );
  console.log(
    isMysqlUrl(config.databaseUrl)
      ? `  databases: order service on MySQL/MariaDB (DATABASE_URL), payment service on SQLite in ${config.dataDir}`
      : config.databaseUrl
        ? `  databases: PostgreSQL (DATABASE_URL), schema ${config.postgresSchema}`
        : `  databases: SQLite, order-service.db and payment-service.db in ${config.dataDir}`,
  );
  console.log(`  try: curl -s -X POST ${demo.url}/orders -H 'content-type: application/json' \\`);
  console.log(`         -d '{"amountCents":1999,"card":"4242424242424242"}'`);
  console.log(`  open ${demo.url}/ in a browser to place orders and watch their messages arrive`);
  console.log(`  external events: POST ${demo.url}/external/topics/order-notes/messages`);
  console.log(
    `    (Authorization: Bearer ${config.externalEventsToken}; body {"orderId":"…","text":"…"}, tag "note")`,
  );
  console.log('  Ctrl-C stops it.');

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      console.error(`${signal} again: exiting without waiting`);
      process.exit(1);
    }
    stopping = true;
    console.log(`${signal}: stopping…`);
    const timer = setTimeout(() => {
      console.error(`the services did not stop within ${STOP_TIMEOUT_MS} ms`);
      process.exit(1);
    }, STOP_TIMEOUT_MS);
    timer.unref();
    demo.close().then(
      () => console.log('stopped'),
      (error: unknown) => {
        console.error('stopping failed:', error);
        process.exitCode = 1;
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(error instanceof DemoConfigError ? `configuration: ${error.message}` : error);
  process.exitCode = 1;
});
