'use strict';
// The billing handler and the HTTP route on @rocketnest/testing's in-memory broker, on a virtual
// clock: the retry after a failure happens when the test moves time, not after real seconds.
const assert = require('node:assert/strict');
const { afterEach, beforeEach, it } = require('node:test');
const { createTestBroker } = require('@rocketnest/testing');
const { createApp } = require('../app');
const { Billing, startBillingConsumer } = require('../billing');

let tb;
let billing;
let consumer;
let server;
let publisher;
let url;

beforeEach(async () => {
  tb = await createTestBroker({ topics: ['orders'] });
  billing = new Billing();
  consumer = await startBillingConsumer({ transport: tb.transport, clock: tb.clock, billing });
  const made = createApp({ transport: tb.transport, billing });
  publisher = made.publisher;
  server = made.app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  url = `http://127.0.0.1:${server.address().port}`;
});

afterEach(async () => {
  await new Promise((resolve) => server.close(resolve));
  await publisher.close();
  await consumer.shutdown();
  await tb.close();
});

async function placeOrder(order) {
  const response = await fetch(`${url}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(order),
  });
  assert.equal(response.status, 201);
}

it('charges a created order', async () => {
  await placeOrder({ id: 'o-1', amount: 5 });
  await tb.drain();
  assert.deepEqual(billing.charged, ['o-1']);
  assert.equal(tb.published('orders').length, 1);
});

it('retries a failed charge after the first backoff (10 s of virtual time)', async () => {
  billing.failNext = 1;
  await placeOrder({ id: 'o-2', amount: 5 });
  await tb.drain();
  assert.deepEqual(billing.charged, []);
  await tb.clock.advance('10s');
  await tb.drain();
  assert.deepEqual(billing.charged, ['o-2']);
  assert.deepEqual(tb.deadLetters('billing'), []);
});
