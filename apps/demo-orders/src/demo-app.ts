import { Module, type INestApplication, type INestMicroservice, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  RocketConnection,
  RocketModule,
  RocketServer,
  type RocketConnectionOptions,
} from '@rocketnest/nest-transport';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { DEMO_TOPICS } from './contracts';
import { isMysqlUrl, type DemoConfig } from './demo-config';
import { DEFAULT_PG_SCHEMA, type PostgresLocation } from './postgres-database';
import { OrderServiceModule } from './order-service/order-service.module';
import { PaymentServiceModule } from './payment-service/payment-service.module';

/** Both services of the demo, running in this process. */
export interface RunningDemo {
  /** Base URL of the order service, e.g. `http://127.0.0.1:3000`. */
  url: string;
  orderApp: INestApplication;
  paymentApp: INestMicroservice;
  /** Stops the payment service, then the order service (and the embedded broker it owns). Idempotent. */
  close(): Promise<void>;
}

export interface StartDemoOptions {
  /** Nest log levels; default error, warn and log. `false` silences Nest. */
  logger?: LogLevel[] | false;
  /** Randomness of the simulated payment provider (tests). */
  random?: () => number;
}

/**
 * Starts the order service (HTTP and its message handlers) and the payment service in this
 * process, on SQLite files in `config.dataDir`, or on PostgreSQL when `config.databaseUrl` is set. With `config.nameServers` both connect to that cluster (the topics must exist there);
 * with `config.apacheProxy` both run on that Apache RocketMQ 5 cluster (its topics typed as
 * `APACHE_DEMO_TOPICS` says);
 * otherwise the order service starts an embedded broker on `<dataDir>/broker` and the payment
 * service joins it through the order service's in-process transport.
 */
export async function startDemo(config: DemoConfig, options: StartDemoOptions = {}): Promise<RunningDemo> {
  const logger = options.logger ?? (['error', 'warn', 'log'] as LogLevel[]);
  // PostgreSQL (DATABASE_URL): both services keep their tables in one schema, each its own tables
  // MySQL/MariaDB (DATABASE_URL=mysql://…): the order service only; payments stay on SQLite
  const mysqlUrl = isMysqlUrl(config.databaseUrl) ? config.databaseUrl : undefined;
  const postgres: PostgresLocation | undefined =
    config.databaseUrl && !mysqlUrl
      ? { url: config.databaseUrl, schema: config.postgresSchema ?? DEFAULT_PG_SCHEMA }
      : undefined;
  // Apache RocketMQ: every connection is the same option; the services share nothing in process
  const apache = config.apacheProxy ? { apache: { endpoints: config.apacheProxy } } : undefined;
  const orderConnection: RocketConnectionOptions = apache
    ? apache
    : config.nameServers
      ? { nameServers: config.nameServers }
      : { embedded: { dir: path.join(config.dataDir, 'broker'), topics: DEMO_TOPICS } };

  @Module({
    imports: [
      RocketModule.forRoot(orderConnection),
      OrderServiceModule.forRoot({
        databaseFile: path.join(config.dataDir, 'order-service.db'),
        postgres,
        mysqlUrl,
        orderTimeoutMs: config.orderTimeoutMs,
        externalEventsToken: config.externalEventsToken,
      }),
    ],
  })
  class OrderServiceAppModule {}

  const orderApp = await NestFactory.create(OrderServiceAppModule, { logger, abortOnError: false });
  let paymentApp: INestMicroservice | undefined;
  try {
    const shared = orderApp.get(RocketConnection);
    orderApp.connectMicroservice({
      strategy: new RocketServer(
        apache ??
          (config.nameServers ? { nameServers: config.nameServers } : { transport: shared.transport }),
      ),
    });
    await orderApp.startAllMicroservices();
    await orderApp.listen(config.port, config.host);

    const paymentConnection: RocketConnectionOptions =
      apache ?? (config.nameServers ? { nameServers: config.nameServers } : { transport: shared.transport });

    @Module({
      imports: [
        RocketModule.forRoot(paymentConnection),
        PaymentServiceModule.forRoot({
          databaseFile: path.join(config.dataDir, 'payment-service.db'),
          postgres,
          failureRate: config.paymentFailureRate,
          ...(options.random ? { random: options.random } : {}),
        }),
      ],
    })
    class PaymentServiceAppModule {}

    paymentApp = await NestFactory.createMicroservice(PaymentServiceAppModule, {
      strategy: new RocketServer(paymentConnection),
      logger,
      abortOnError: false,
    });
    await paymentApp.listen();
  } catch (error) {
    await paymentApp?.close();
    await orderApp.close();
    throw error;
  }

  const address = orderApp.getHttpServer().address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const payment = paymentApp;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    orderApp,
    paymentApp: payment,
    close: () =>
      (closing ??= (async () => {
        try {
          await payment.close();
        } finally {
          await orderApp.close();
        }
      })()),
  };
}
