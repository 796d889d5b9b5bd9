import {
  Inject,
  Injectable,
  Module,
  type DynamicModule,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';
import { MysqlOutbox } from '@rocketnest/core-broker/outbox';
import { RocketConnection, RocketOutbox, RocketOutboxModule } from '@rocketnest/nest-transport';
import type { Pool } from 'mysql2/promise';
import { closeMysqlPool, openMysqlPool } from '../mysql-database';
import { ORDER_OUTBOX_PRODUCER_GROUP } from './order-database.module';
import { MysqlOrderStore } from './order.mysql-store';
import { OrderStore } from './order.store';

/** Injection token of the order service's mysql2 pool (MySQL/MariaDB mode). */
export const ORDER_MYSQL_POOL = Symbol('ORDER_MYSQL_POOL');

/**
 * Ends the pool when the app shuts down: `onApplicationShutdown` runs after every
 * `beforeApplicationShutdown`, so after `RocketOutbox` has stopped and drained its relay.
 */
@Injectable()
class OrderMysqlPoolCloser implements OnApplicationShutdown {
  constructor(@Inject(ORDER_MYSQL_POOL) private readonly pool: Pool) {}

  async onApplicationShutdown(): Promise<void> {
    await closeMysqlPool(this.pool);
  }
}

/**
 * The order service on MySQL 8 / MariaDB 10.6+ (`DATABASE_URL=mysql://…`): a mysql2 pool on the
 * URL's database, the transactional outbox (`RocketOutboxModule` with core-broker's `MysqlOutbox`;
 * its relay claims rows with `FOR UPDATE SKIP LOCKED`, woken after each `add()` in this process
 * and otherwise by polling); {@link OrderMysqlModule.store} is the {@link OrderStore} on them
 * (`MysqlOrderStore`, with `MysqlInbox`). Tables are created when absent.
 */
@Module({})
export class OrderMysqlModule {
  static forRoot(url: string): DynamicModule {
    const pool: DynamicModule = {
      module: class OrderMysqlPool {},
      providers: [{ provide: ORDER_MYSQL_POOL, useFactory: () => openMysqlPool(url) }, OrderMysqlPoolCloser],
      exports: [ORDER_MYSQL_POOL],
    };
    const outbox = RocketOutboxModule.forRootAsync({
      imports: [pool],
      inject: [ORDER_MYSQL_POOL, RocketConnection],
      useFactory: async (db: Pool, connection: RocketConnection) => {
        const mysqlOutbox = new MysqlOutbox({ pool: db, clock: connection.clock });
        // now rather than at bootstrap: listeners may run before the app's bootstrap hooks
        await mysqlOutbox.migrate();
        // no NOTIFY on MySQL: poll often enough that a row committed by another process is quick too
        return {
          outbox: mysqlOutbox,
          producerGroup: ORDER_OUTBOX_PRODUCER_GROUP,
          relayOptions: { pollIntervalMs: 200 },
        };
      },
    });
    return { module: OrderMysqlModule, imports: [pool, outbox], exports: [pool, outbox] };
  }

  /** The {@link OrderStore} provider on this module's pool and outbox (tables created when absent). */
  static store(): Provider {
    return {
      provide: OrderStore,
      useFactory: (db: Pool, rocketOutbox: RocketOutbox, connection: RocketConnection) =>
        MysqlOrderStore.create(db, rocketOutbox, connection.clock),
      inject: [ORDER_MYSQL_POOL, RocketOutbox, RocketConnection],
    };
  }
}
