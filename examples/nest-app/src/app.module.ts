import { type DynamicModule, Module } from '@nestjs/common';
import { RocketModule, type RocketConnectionOptions } from '@rocketnest/nest-transport';
import { BillingService } from './billing.service';
import { OrdersController } from './orders.controller';

/** Topics the app uses; a standalone broker must have them (`rocketnest broker --topics orders`). */
export const TOPICS = ['orders'];

/**
 * With ROCKETNEST_BROKER=host:port the app uses that standalone broker; without it, a broker
 * embedded in the process on a MemoryStore (development and tests; nothing survives a restart).
 */
export function connectionFromEnv(env: NodeJS.ProcessEnv = process.env): RocketConnectionOptions {
  const address = env.ROCKETNEST_BROKER;
  return address ? { brokers: { 'broker-a': address } } : { embedded: { topics: TOPICS } };
}

@Module({})
export class AppModule {
  static register(connection: RocketConnectionOptions = connectionFromEnv()): DynamicModule {
    return {
      module: AppModule,
      imports: [RocketModule.forRoot(connection)],
      controllers: [OrdersController],
      providers: [BillingService],
    };
  }
}
