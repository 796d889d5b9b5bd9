import { Module, type DynamicModule } from '@nestjs/common';
import { openSqliteDatabase } from '../sqlite-database';
import { PaymentGateway } from './payment-gateway';
import { PaymentListener } from './payment.listener';
import { PAYMENT_DATABASE, PaymentRepository } from './payment.repository';
import { PAYMENT_SERVICE_OPTIONS, type PaymentServiceOptions } from './payment-service.options';
import { PaymentTransactionsListener } from './payment-transactions.listener';

/**
 * The payment service: charges orders, records payments in its own SQLite database and publishes
 * their outcome transactionally. Needs `RocketModule` (or `RocketTestingModule`) next to it.
 */
@Module({})
export class PaymentServiceModule {
  static forRoot(options: PaymentServiceOptions): DynamicModule {
    if (!(options.failureRate >= 0 && options.failureRate <= 1)) {
      throw new RangeError(`failureRate must be from 0 to 1, got ${options.failureRate}`);
    }
    return {
      module: PaymentServiceModule,
      controllers: [PaymentListener],
      providers: [
        { provide: PAYMENT_SERVICE_OPTIONS, useValue: { ...options } },
        { provide: PAYMENT_DATABASE, useFactory: () => openSqliteDatabase(options.databaseFile) },
        PaymentRepository,
        PaymentGateway,
        PaymentTransactionsListener,
      ],
      exports: [PaymentRepository, PaymentTransactionsListener, PaymentGateway],
    };
  }
}
