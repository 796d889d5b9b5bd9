import 'reflect-metadata';
import { type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TestBroker } from '@rocketnest/testing';
import { RocketTestingModule, rocketTestServer } from '@rocketnest/testing/nest';
import { BillingService } from './billing.service';
import { OrdersController } from './orders.controller';

// The handler on @rocketnest/testing's in-memory broker, on a virtual clock: retries happen when
// the test moves time, not after real seconds.
describe('orders:created handler', () => {
  let app: INestApplication;
  let tb: TestBroker;

  beforeEach(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [RocketTestingModule.forRoot({ topics: ['orders'] })],
      controllers: [OrdersController],
      providers: [BillingService],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    app.connectMicroservice({ strategy: rocketTestServer(app) });
    await app.startAllMicroservices();
    await app.init();
    tb = app.get(TestBroker);
  });

  afterEach(async () => {
    await app.close();
  });

  it('charges a created order', async () => {
    await app.get(OrdersController).create({ id: 'o-1', amount: 5 });
    await tb.drain();
    expect(app.get(BillingService).charged).toEqual(['o-1']);
  });

  it('retries a failed charge after the first backoff (10 s of virtual time)', async () => {
    const billing = app.get(BillingService);
    billing.failNext = 1;
    await app.get(OrdersController).create({ id: 'o-2', amount: 5 });
    await tb.drain();
    expect(billing.charged).toEqual([]);
    await tb.clock.advance('10s');
    await tb.drain();
    expect(billing.charged).toEqual(['o-2']);
    expect(tb.deadLetters('billing')).toEqual([]);
  });
});
