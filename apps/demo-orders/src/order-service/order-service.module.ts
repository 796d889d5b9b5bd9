import { Module, type DynamicModule } from '@nestjs/common';
import { RocketPushModule } from '@rocketnest/nest-transport';
import { ExternalEventsRouter } from './external-events.router';
import { OrderEventsListener } from './order-events.listener';
import { OrderRepository } from './order.repository';
import { OrderDatabaseModule } from './order-database.module';
import { OrderMysqlModule } from './order-mysql.module';
import { OrderPostgresModule } from './order-postgres.module';
import { OrderStore, SqliteOrderStore } from './order.store';
import { OrderService } from './order.service';
import { OrderPageController } from './order-page.controller';
import { ORDER_PUSH_OPTIONS } from './order-push.options';
import { ORDER_SERVICE_OPTIONS, type OrderServiceOptions } from './order-service.options';
import { OrdersController } from './orders.controller';

/**
 * The order service: HTTP API and page, push channel, external events endpoint (Express), message
 * handlers, its database (SQLite, PostgreSQL with `options.postgres`, MySQL/MariaDB with
 * `options.mysqlUrl`) with the outbox (and its
 * relay) and inbox. It
 * needs an HTTP app (`NestFactory.create`) and `RocketModule` (or
 * `RocketTestingModule`) imported next to it; its listeners run in the app's `RocketServer`.
 */
@Module({})
export class OrderServiceModule {
  static forRoot(options: OrderServiceOptions): DynamicModule {
    const server = options.postgres !== undefined || options.mysqlUrl !== undefined;
    return {
      module: OrderServiceModule,
      imports: [
        options.postgres
          ? OrderPostgresModule.forRoot(options.postgres)
          : options.mysqlUrl
            ? OrderMysqlModule.forRoot(options.mysqlUrl)
            : OrderDatabaseModule.forRoot(options.databaseFile),
        ...(options.push === false ? [] : [RocketPushModule.forRoot(ORDER_PUSH_OPTIONS)]),
      ],
      controllers: [OrdersController, OrderEventsListener, OrderPageController],
      providers: [
        { provide: ORDER_SERVICE_OPTIONS, useValue: { ...options } },
        ...(options.postgres
          ? [OrderPostgresModule.store(options.postgres)]
          : options.mysqlUrl
            ? [OrderMysqlModule.store()]
            : [OrderRepository, { provide: OrderStore, useClass: SqliteOrderStore }]),
        OrderService,
        ExternalEventsRouter,
      ],
      exports: [OrderService, OrderStore, ...(server ? [] : [OrderRepository])],
    };
  }
}
