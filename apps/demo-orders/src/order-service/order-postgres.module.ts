import {
  Inject,
  Injectable,
  Module,
  type DynamicModule,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';
import { PostgresOutbox } from '@rocketnest/core-broker/outbox';
import { RocketConnection, RocketOutbox, RocketOutboxModule } from '@rocketnest/nest-transport';
import type { Pool } from 'pg';
import { closePostgresPool, openPostgresPool, type PostgresLocation } from '../postgres-database';
import { ORDER_OUTBOX_PRODUCER_GROUP } from './order-database.module';
import { PostgresOrderStore } from './order.postgres-store';
import { OrderStore } from './order.store';

/** Injection token of the order service's `pg.Pool` (PostgreSQL mode). */
export const ORDER_PG_POOL = Symbol('ORDER_PG_POOL');

/**
 * Ends the pool when the app shuts down: `onApplicationShutdown` runs after every
 * `beforeApplicationShutdown`, so after `RocketOutbox` has stopped and drained its relay.
 */
@Injectable()
class OrderPoolCloser implements OnApplicationShutdown {
  constructor(@Inject(ORDER_PG_POOL) private readonly pool: Pool) {}

  async onApplicationShutdown(): Promise<void> {
    await closePostgresPool(this.pool);
  }
}

/**
 * The order service on PostgreSQL (`DATABASE_URL`): a `pg.Pool` on the service's schema, the
 * transactional outbox (`RocketOutboxModule` with core-broker's `PostgresOutbox`; its relay claims
 * rows with `FOR UPDATE SKIP LOCKED` and is woken by `LISTEN`/`NOTIFY`); {@link OrderPostgresModule.store}
 * is the {@link OrderStore} on them (`PostgresOrderStore`, with `PostgresInbox`). Tables are created
 * when absent.
 */
@Module({})
export class OrderPostgresModule {
  static forRoot(location: PostgresLocation): DynamicModule {
    const pool: DynamicModule = {
      module: class OrderPostgresPool {},
      providers: [{ provide: ORDER_PG_POOL, useFactory: () => openPostgresPool(location) }, OrderPoolCloser],
      exports: [ORDER_PG_POOL],
    };
    const outbox = RocketOutboxModule.forRootAsync({
      imports: [pool],
      inject: [ORDER_PG_POOL, RocketConnection],
      useFactory: async (db: Pool, connection: RocketConnection) => {
        const postgresOutbox = new PostgresOutbox({
          pool: db,
          table: `${location.schema}.rocketnest_outbox`,
          clock: connection.clock,
        });
        // now rather than at bootstrap: listeners may run before the app's bootstrap hooks
        await postgresOutbox.migrate();
        return { outbox: postgresOutbox, producerGroup: ORDER_OUTBOX_PRODUCER_GROUP };
      },
    });
    return {
      module: OrderPostgresModule,
      imports: [pool, outbox],
      exports: [pool, outbox],
    };
  }

  /** The {@link OrderStore} provider on this module's pool and outbox (tables created when absent). */
  static store(location: PostgresLocation): Provider {
    return {
      provide: OrderStore,
      useFactory: (db: Pool, rocketOutbox: RocketOutbox, connection: RocketConnection) =>
        PostgresOrderStore.create(db, rocketOutbox, location.schema, connection.clock),
      inject: [ORDER_PG_POOL, RocketOutbox, RocketConnection],
    };
  }
}
