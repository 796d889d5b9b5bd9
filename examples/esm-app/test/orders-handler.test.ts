import 'reflect-metadata';
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TestBroker } from '@rocketnest/testing';
import { RocketTestingModule, rocketTestServer } from '@rocketnest/testing/nest';
import { BillingService } from '../src/billing.service.js';
import { OrdersController } from '../src/orders.controller.js';

// The handler on @rocketnest/testing's in-memory broker, on a virtual clock.
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
    assert.deepEqual(app.get(BillingService).charged, ['o-1']);
  });

  it('retries a failed charge after the first backoff (10 s of virtual time)', async () => {
    const billing = app.get(BillingService);
    billing.failNext = 1;
    await app.get(OrdersController).create({ id: 'o-2', amount: 5 });
    await tb.drain();
    assert.deepEqual(billing.charged, []);
    await tb.clock.advance('10s');
    await tb.drain();
    assert.deepEqual(billing.charged, ['o-2']);
    assert.deepEqual(tb.deadLetters('billing'), []);
  });
});
