import { Module, type DynamicModule } from '@nestjs/common';
import { openPostgresPool } from '../postgres-database';
import { openSqliteDatabase } from '../sqlite-database';
import { PaymentGateway } from './payment-gateway';
import { PaymentListener } from './payment.listener';
import { PAYMENT_DATABASE, PaymentRepository } from './payment.repository';
import { PAYMENT_SERVICE_OPTIONS, type PaymentServiceOptions } from './payment-service.options';
import { PaymentTransactionsListener } from './payment-transactions.listener';
import { PaymentStore, PostgresPaymentStore, SqlitePaymentStore } from './payment.store';

/**
 * The payment service: charges orders, records payments in its own database (SQLite, or PostgreSQL
 * with `options.postgres`) and publishes
 * their outcome transactionally. Needs `RocketModule` (or `RocketTestingModule`) next to it.
 */
@Module({})
export class PaymentServiceModule {
  static forRoot(options: PaymentServiceOptions): DynamicModule {
    if (!(options.failureRate >= 0 && options.failureRate <= 1)) {
      throw new RangeError(`failureRate must be from 0 to 1, got ${options.failureRate}`);
    }
    const postgres = options.postgres;
    return {
      module: PaymentServiceModule,
      controllers: [PaymentListener],
      providers: [
        { provide: PAYMENT_SERVICE_OPTIONS, useValue: { ...options } },
        ...(postgres
          ? [
              {
                provide: PaymentStore,
                useFactory: async () => PostgresPaymentStore.create(await openPostgresPool(postgres)),
              },
            ]
          : [
              { provide: PAYMENT_DATABASE, useFactory: () => openSqliteDatabase(options.databaseFile) },
              PaymentRepository,
              { provide: PaymentStore, useClass: SqlitePaymentStore },
            ]),
        PaymentGateway,
        PaymentTransactionsListener,
      ],
      exports: [
        PaymentStore,
        PaymentTransactionsListener,
        PaymentGateway,
        ...(postgres ? [] : [PaymentRepository]),
      ],
    };
  }
}
