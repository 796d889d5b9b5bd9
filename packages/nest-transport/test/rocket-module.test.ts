import 'reflect-metadata';
import { Controller, Injectable, Module, type INestApplication } from '@nestjs/common';
import { Ctx, Payload, Server, type CustomTransportStrategy } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { isRocketError, type PushConsumer } from '@rocketnest/core-broker';
import { firstValueFrom } from 'rxjs';
import {
  RocketClient,
  RocketConnection,
  RocketContext,
  RocketListener,
  RocketModule,
  RocketRecordBuilder,
  RocketServer,
  RocketTemplate,
  RocketTransactionListener,
  RocketTransactionState,
  type RocketLocalTransactionListener,
  type RocketTransactionMessage,
} from '../src';
import { CapturingLogger } from './support/nest-app';
import { sleep, waitFor } from './support/wait';

const received: Array<{ payload: unknown; tag: string | undefined; group: string | undefined; at: number }> =
  [];

@Controller()
class InventoryController {
  @RocketListener('inventory', '*', { group: 'inventory-service' })
  onStock(@Payload() payload: unknown, @Ctx() ctx: RocketContext) {
    received.push({ payload, tag: ctx.getTag(), group: ctx.getMessageGroup(), at: Date.now() });
  }

  // orderly sends carry a message group, which the broker takes on a FIFO topic only
  @RocketListener('inventory-fifo', '*', { group: 'inventory-service' })
  onOrderedStock(@Payload() payload: unknown, @Ctx() ctx: RocketContext) {
    received.push({ payload, tag: ctx.getTag(), group: ctx.getMessageGroup(), at: Date.now() });
  }

  @RocketListener('quotes', 'price', { group: 'quote-service', reply: true })
  price(@Payload() sku: string) {
    return { sku, cents: 1299 };
  }
}

const decisions: string[] = [];
const checks: RocketTransactionMessage[] = [];
const pendingOrders = new Map<string, RocketTransactionState>();

@Injectable()
@RocketTransactionListener({ producerGroup: 'order-tx', topics: ['inventory'] })
class OrderTransactions implements RocketLocalTransactionListener {
  executeLocalTransaction(message: RocketTransactionMessage, arg: unknown): RocketTransactionState {
    const decision = arg as RocketTransactionState;
    decisions.push(`${(message.payload as { id: string }).id}:${decision}`);
    if (decision === 'UNKNOWN') pendingOrders.set(message.transactionId, 'COMMIT');
    return decision;
  }
  checkLocalTransaction(message: RocketTransactionMessage): RocketTransactionState {
    checks.push(message);
    return pendingOrders.get(message.transactionId) ?? RocketTransactionState.ROLLBACK;
  }
}

@Injectable()
class OrderService {
  constructor(readonly template: RocketTemplate) {}
}

/** A hybrid app: HTTP (express) plus a RocketServer on the module's connection. */
async function startHybrid(
  moduleImports: Parameters<typeof Module>[0]['imports'],
  logs = new CapturingLogger(),
): Promise<{ app: INestApplication; server: RocketServer }> {
  @Module({
    imports: moduleImports,
    controllers: [InventoryController],
    providers: [OrderTransactions, OrderService],
  })
  class AppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  const app = moduleRef.createNestApplication({ logger: logs });
  const server = new RocketServer({
    transport: app.get(RocketConnection).transport,
    consumer: { consumeFromWhere: 'FIRST_OFFSET', suspendTimeoutMs: 200 },
  });
  app.connectMicroservice({ strategy: server }, { inheritAppConfig: true });
  await app.startAllMicroservices();
  await app.init();
  return { app, server };
}

const embedded = {
  embedded: {
    topics: ['inventory', 'quotes', { topic: 'inventory-fifo', fifo: true }],
    broker: { transactionTimeoutMs: 200, transactionCheckIntervalMs: 200 },
  },
};

describe('RocketModule with an embedded broker, in a hybrid app', () => {
  let app: INestApplication;
  let template: RocketTemplate;

  beforeAll(async () => {
    ({ app } = await startHybrid([RocketModule.forRoot(embedded)]));
    template = app.get(OrderService).template;
  });
  afterAll(async () => {
    await app?.close();
  });
  beforeEach(() => {
    received.length = 0;
  });

  it('RocketTemplate sends sync, async, one-way, orderly, delayed and in batches', async () => {
    await template.send('inventory:restock', { sku: 'a' });
    await template.sendAsync('inventory', { sku: 'b' }, { tag: 'async' });
    template.sendOneway('inventory:oneway', { sku: 'c' });
    await template.sendOrderly('inventory-fifo:orderly', { sku: 'd' }, 'sku-d');
    const delayedAt = Date.now();
    await template.sendDelayed('inventory:later', { sku: 'e' }, 300);
    const batch = await template.sendBatch('inventory:batch', [{ sku: 'f' }, { sku: 'g' }]);
    expect(batch).toHaveLength(2);
    await waitFor(() => received.length === 7, 'seven messages');
    const byTag = new Map(received.map((r) => [r.tag, r]));
    expect(byTag.get('restock')!.payload).toEqual({ sku: 'a' });
    expect(byTag.get('async')!.payload).toEqual({ sku: 'b' });
    expect(byTag.get('oneway')!.payload).toEqual({ sku: 'c' });
    expect(byTag.get('orderly')!.group).toBe('sku-d');
    expect(byTag.get('later')!.at - delayedAt).toBeGreaterThanOrEqual(250);
    expect(received.filter((r) => r.tag === 'batch').map((r) => r.payload)).toEqual(
      expect.arrayContaining([{ sku: 'f' }, { sku: 'g' }]),
    );
  });

  it('the module RocketClient does request-reply with the hybrid server', async () => {
    const client = app.get(RocketClient);
    const quote = await firstValueFrom(
      client.send('quotes', new RocketRecordBuilder('sku-1').setTag('price').build()),
    );
    expect(quote).toEqual({ sku: 'sku-1', cents: 1299 });
  });

  it('sendInTransaction commits, rolls back, and an UNKNOWN is settled by the check-back', async () => {
    const committed = await template.sendInTransaction('inventory:reserve', { id: 'o1' }, 'COMMIT');
    const rolledBack = await template.sendInTransaction('inventory:reserve', { id: 'o2' }, 'ROLLBACK');
    const unknown = await template.sendInTransaction('inventory:reserve', { id: 'o3' }, 'UNKNOWN');
    expect([committed.resolution, rolledBack.resolution, unknown.resolution]).toEqual([
      'COMMIT',
      'ROLLBACK',
      'UNKNOWN',
    ]);
    await waitFor(() => received.length === 2, 'o1 at once and o3 after its check-back', 10_000);
    await sleep(300);
    expect(received.map((r) => (r.payload as { id: string }).id).sort()).toEqual(['o1', 'o3']);
    expect(decisions).toEqual(['o1:COMMIT', 'o2:ROLLBACK', 'o3:UNKNOWN']);
    expect(checks[0]).toMatchObject({
      transactionId: unknown.transactionId,
      payload: { id: 'o3' },
      checkTimes: 1,
    });
  });

  it('sendInTransaction names a producer group that has no listener: a clear error', async () => {
    const error = await template
      .sendInTransaction('inventory', {}, undefined, { producerGroup: 'nobody' })
      .catch((e: unknown) => e);
    expect(isRocketError(error) && error.code).toBe('INVALID_ARGUMENT');
    expect((error as Error).message).toMatch(/no @RocketTransactionListener for producer group "nobody"/);
  });

  it('another transport of the same app never picks up @RocketListener handlers', async () => {
    class OtherServer extends Server implements CustomTransportStrategy {
      listen(callback: () => void) {
        callback();
      }
      close() {}
      on() {}
      unwrap<T>(): T {
        return undefined as T;
      }
    }
    const other = new OtherServer();
    other.transportId = Symbol('OTHER');
    @Module({ imports: [RocketModule.forRoot(embedded)], controllers: [InventoryController] })
    class TwoTransports {}
    const moduleRef = await Test.createTestingModule({ imports: [TwoTransports] }).compile();
    const hybrid = moduleRef.createNestApplication({ logger: false });
    const rocket = new RocketServer({ transport: hybrid.get(RocketConnection).transport });
    hybrid.connectMicroservice({ strategy: rocket });
    hybrid.connectMicroservice({ strategy: other });
    await hybrid.startAllMicroservices();
    try {
      expect(other.getHandlers().size).toBe(0);
      expect(rocket.getHandlers().size).toBe(3); // inventory, inventory-fifo, quotes
    } finally {
      await hybrid.close();
    }
  });

  it('app.close() stops the server consumers, then the module closes producers and the broker', async () => {
    const { app: other, server: otherServer } = await startHybrid([RocketModule.forRoot(embedded)]);
    const { pushConsumers } = otherServer.unwrap<{ pushConsumers: Map<string, PushConsumer> }>();
    const consumers = [...pushConsumers.values()];
    expect(consumers.length).toBeGreaterThan(0);
    const connection = other.get(RocketConnection);
    const broker = connection.broker!;
    const statuses: string[] = [];
    otherServer.status.subscribe((s) => statuses.push(s));
    await other.close();
    expect(statuses).toEqual(['connected', 'disconnected']);
    expect(consumers.every((c) => c.assignment().length === 0)).toBe(true);
    // the module closed its producer and the embedded broker it owned
    const error = await other
      .get(RocketTemplate)
      .send('inventory', {})
      .catch((e: unknown) => e);
    expect(isRocketError(error) && error.code).toBe('CLOSED');
    expect(() => broker.createTopic({ topic: 'after-close' })).toThrow(/is closed/);
  });
});

describe('RocketModule.forRootAsync', () => {
  @Injectable()
  class Config {
    get(key: string): string {
      return { BROKER: 'embedded', PRODUCER_GROUP: 'async-producer' }[key]!;
    }
  }
  @Module({ providers: [Config], exports: [Config] })
  class ConfigModule {}

  it('builds the options from an injected config service', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        RocketModule.forRootAsync({
          imports: [ConfigModule],
          inject: [Config],
          useFactory: (config: Config) => ({
            embedded: { topics: ['inventory'] },
            producerGroup: config.get('PRODUCER_GROUP'),
          }),
        }),
      ],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    try {
      const template = app.get(RocketTemplate);
      const sent = await template.send('inventory:async', { ok: true });
      expect(sent.topic).toBe('inventory');
      expect(app.get(RocketClient)).toBeInstanceOf(RocketClient);
      expect(app.get(RocketConnection).broker).toBeDefined();
    } finally {
      await app.close();
    }
  });

  it('a transaction listener that does not implement the interface fails at init', async () => {
    @Injectable()
    @RocketTransactionListener({ producerGroup: 'broken-tx' })
    class Broken {}
    const moduleRef = await Test.createTestingModule({
      imports: [RocketModule.forRoot({ embedded: {} })],
      providers: [Broken],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await expect(app.init()).rejects.toThrow(/Broken is a @RocketTransactionListener but does not implement/);
    await app.close();
  });
});
