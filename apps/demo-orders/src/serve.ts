// Runs the demo in this process until SIGINT/SIGTERM, printing where it is and what to try:
// the body of `pnpm demo` (main.ts) and `pnpm demo:apache` (apache-main.ts).
import { isMysqlUrl, type DemoConfig } from './demo-config';
import { startDemo } from './demo-app';

/** How long a signal waits for the services to stop before the process exits anyway. */
const STOP_TIMEOUT_MS = 10_000;

export interface ServeOptions {
  /** Runs after the services stopped on a signal (e.g. stopping the Apache cluster). */
  afterStop?: () => Promise<void>;
}

/** Starts the demo and stops it on SIGINT/SIGTERM (a second signal exits at once). */
export async function serveDemo(config: DemoConfig, options: ServeOptions = {}): Promise<void> {
  const demo = await startDemo(config);
  console.log(`RocketNest demo: order service listening on ${demo.url}`);
  console.log(
    config.apacheProxy
      ? `  broker: Apache RocketMQ 5, proxy ${config.apacheProxy} (the Apache driver, RocketMQ 5 gRPC)`
      : config.nameServers
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
  if (config.apacheProxy) {
    console.log(
      '    (live page on Apache: a reconnecting page resumes exactly only while this process runs; docs/push.md)',
    );
  }
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
    const afterStop = async (): Promise<void> => {
      if (!options.afterStop) return;
      console.log('stopping the broker…');
      await options.afterStop();
    };
    const timer = setTimeout(() => {
      console.error(`the services did not stop within ${STOP_TIMEOUT_MS} ms`);
      process.exitCode = 1;
      void afterStop().finally(() => process.exit(1));
    }, STOP_TIMEOUT_MS);
    timer.unref();
    demo
      .close()
      .finally(() => {
        clearTimeout(timer);
        return afterStop();
      })
      .then(
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
