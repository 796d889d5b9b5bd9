import 'reflect-metadata';
import { Controller, Injectable, type INestApplication } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { RocketListener, RocketTemplate } from '@rocketnest/nest-transport';
import { TestBroker } from '@rocketnest/testing';
import { RocketTestingModule, rocketTestServer } from '@rocketnest/testing/nest';

const events: string[] = [];
let failuresLeft = 0;

@Injectable()
class OrderService {
  constructor(private readonly rocket: RocketTemplate) {}

  async place(id: string): Promise<void> {
    await this.rocket.send('orders:created', { id });
    await this.rocket.sendDelayed('orders:timeout', { id }, 15_000);
  }
}

@Controller()
class OrderListeners {
  @RocketListener('orders', 'created', { group: 'billing' })
  charge(@Payload() order: { id: string }): void {
    if (failuresLeft > 0) {
      failuresLeft--;
      throw new Error('payment provider down');
    }
    events.push(`charged ${order.id}`);
  }

  @RocketListener('orders', 'timeout', { group: 'billing' })
  timeout(@Payload() order: { id: string }): void {
    events.push(`timed out ${order.id}`);
  }
}

describe('RocketTestingModule', () => {
  let app: INestApplication;
  let tb: TestBroker;

  beforeEach(async () => {
    events.length = 0;
    failuresLeft = 0;
    const moduleRef = await Test.createTestingModule({
      imports: [RocketTestingModule.forRoot({ topics: ['orders'] })],
      providers: [OrderService],
      controllers: [OrderListeners],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    app.connectMicroservice({ strategy: rocketTestServer(app) }, { inheritAppConfig: true });
    await app.startAllMicroservices();
    await app.init();
    tb = app.get(TestBroker);
  });

  afterEach(async () => {
    await app.close();
  });

  test('listeners run on the in-memory broker; a delayed message waits for the virtual clock', async () => {
    await app.get(OrderService).place('o-1');
    await tb.drain();
    expect(events).toEqual(['charged o-1']);
    expect(tb.published('orders').map((m) => m.tag)).toEqual(['created']);
    await tb.clock.advance('15s');
    await tb.drain();
    expect(events).toEqual(['charged o-1', 'timed out o-1']);
    expect(tb.consumed('billing', 'orders')).toHaveLength(2);
  });

  test('a failing handler is retried when the clock passes its backoff (10 s, then 30 s)', async () => {
    failuresLeft = 2;
    await app.get(OrderService).place('o-2');
    await tb.drain();
    expect(events).toEqual([]);
    await tb.clock.advance('10s');
    await tb.drain();
    expect(events).toEqual([]);
    await tb.clock.advance('15s'); // the order's 15 s timeout falls due on the way
    await tb.drain();
    expect(events).toEqual(['timed out o-2']);
    await tb.clock.runAll();
    expect(events).toEqual(['timed out o-2', 'charged o-2']);
    expect(tb.deadLetters('billing')).toEqual([]);
  });

  test('app.close() closes the test broker with it', async () => {
    await app.close();
    expect(() => tb.broker.createTopic({ topic: 'after' })).toThrow(/closed/);
  });
});
