import { Producer } from '@rocketnest/core-broker';
import { createTestBroker, type TestBroker } from '@rocketnest/testing';
import { rocketMatchers } from '@rocketnest/testing/jest';

expect.extend(rocketMatchers);

let tb: TestBroker;
let producer: Producer;

beforeEach(async () => {
  tb = await createTestBroker({ topics: [{ topic: 'orders', fifo: true }] }); // the message below has a group
  producer = new Producer({ group: 'PG', transport: tb.transport, clock: tb.clock });
  await producer.start();
  await producer.send({
    topic: 'orders',
    tag: 'created',
    keys: ['order-42', 'customer-7'],
    messageGroup: 'order-42',
    properties: { region: 'eu' },
    body: '{"id":42,"total":1999}',
  });
});

afterEach(async () => {
  await producer.shutdown();
  await tb.close();
});

test('toHavePublished matches on any subset of tag, keys, group, properties and body (JSON or text)', () => {
  expect(tb).toHavePublished('orders');
  expect(tb).toHavePublished('orders', { tag: 'created', keys: ['customer-7'] });
  expect(tb).toHavePublished('orders', { messageGroup: 'order-42', properties: { region: 'eu' } });
  // JSON bodies compare as values: key order does not matter
  expect(tb).toHavePublished('orders', { body: { total: 1999, id: 42 } });
  expect(tb).toHavePublished('orders', { body: '{"id":42,"total":1999}' });
  expect(tb).not.toHavePublished('orders', { tag: 'paid' });
  expect(tb).not.toHavePublished('orders', { body: { id: 43, total: 1999 } });
  expect(tb).not.toHavePublished('payments');
});

test('a failed match says what was published', () => {
  let message = '';
  try {
    expect(tb).toHavePublished('orders', { tag: 'paid' });
  } catch (error) {
    message = (error as Error).message;
  }
  expect(message).toMatch(/expected a message of topic "orders" matching \{"tag":"paid"\}; published \(1\)/);
  expect(message).toMatch(/tag=created keys=\[order-42,customer-7\]/);
});
