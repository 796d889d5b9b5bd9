import 'reflect-metadata';
import { RocketTemplate } from '@rocketnest/nest-transport';
import {
  ORDER_TIMEOUTS_TOPIC,
  ORDERS_TOPIC,
  PAYMENTS_TOPIC,
  TEST_CARDS,
  type PaymentResultEvent,
} from '../src/contracts';
import { OrderRepository, type OrderView } from '../src/order-service/order.repository';
import { OrderService } from '../src/order-service/order.service';
import { PaymentRepository } from '../src/payment-service/payment.repository';
import { PaymentTransactionsListener } from '../src/payment-service/payment-transactions.listener';
import { startDemoTestApp, type DemoTestApp } from './support/demo-test-app';

let demo: DemoTestApp;

afterEach(async () => {
  await demo?.close();
});

function tags(topic: string): Array<string | undefined> {
  return demo.tb.published(topic).map((m) => m.tag);
}

function msgIdOf(topic: string, tag: string): string {
  const found = demo.tb.published(topic).filter((m) => m.tag === tag);
  expect(found).toHaveLength(1);
  return found[0]!.msgId;
}

async function placeOrder(card: string, amountCents = 1999): Promise<string> {
  const created = await demo.http('POST', '/orders', { amountCents, card });
  expect(created.status).toBe(201);
  expect(created.body).toMatchObject({ status: 'created', amountCents, cardLast4: card.slice(-4) });
  return created.body.id;
}

async function order(id: string): Promise<OrderView> {
  const got = await demo.http('GET', `/orders/${id}`);
  expect(got.status).toBe(200);
  return got.body;
}

describe('order and payment services on the test broker', () => {
  test('paid path: created → payment succeeded → paid; the later timeout changes nothing', async () => {
    demo = await startDemoTestApp();
    const id = await placeOrder(TEST_CARDS.APPROVED);
    await demo.settle();

    const paid = await order(id);
    expect(paid.status).toBe('paid');
    expect(paid.timeline.map((e) => [e.event, e.topic, e.tag])).toEqual([
      ['created', 'orders', 'created'],
      ['paid', 'payments', 'succeeded'],
    ]);
    expect(paid.timeline[0]!.msgId).toBe(msgIdOf(ORDERS_TOPIC, 'created'));
    expect(paid.timeline[1]!.msgId).toBe(msgIdOf(PAYMENTS_TOPIC, 'succeeded'));
    const created = demo.tb.published(ORDERS_TOPIC).find((m) => m.tag === 'created')!;
    expect(created.messageGroup).toBe(id);
    // published by the outbox relay: the row id is the first key and the OUTBOX_ID property
    expect(created.keys).toEqual([created.properties.OUTBOX_ID, id]);
    expect(tags(ORDERS_TOPIC)).toEqual(['created', 'paid']);
    expect(demo.app.get(PaymentRepository).findByOrder(id)).toMatchObject({
      status: 'succeeded',
      amountCents: 1999,
    });

    await demo.tb.clock.advance('15s');
    await demo.settle();
    const later = await order(id);
    expect(later.status).toBe('paid');
    expect(later.timeline).toEqual(paid.timeline);
    expect(tags(ORDERS_TOPIC)).toEqual(['created', 'paid']);
    expect(tags(ORDER_TIMEOUTS_TOPIC)).toEqual(['timeout']);
  });

  test('failed path: a declined card moves the order to failed, with the reason', async () => {
    demo = await startDemoTestApp();
    const id = await placeOrder(TEST_CARDS.DECLINED);
    await demo.settle();

    const failed = await order(id);
    expect(failed.status).toBe('failed');
    expect(failed.timeline.map((e) => e.event)).toEqual(['created', 'failed']);
    expect(failed.timeline[1]!).toMatchObject({ tag: 'failed', detail: 'card declined' });
    expect(failed.timeline[1]!.msgId).toBe(msgIdOf(PAYMENTS_TOPIC, 'failed'));
    expect(tags(ORDERS_TOPIC)).toEqual(['created', 'failed']);
  });

  test('the failure rate decides ordinary cards, through the injected random source', async () => {
    const draws = [0.05, 0.5];
    demo = await startDemoTestApp({ failureRate: 0.2, random: () => draws.shift() ?? 1 });
    const declined = await placeOrder('5555555555554444');
    await demo.settle();
    const approved = await placeOrder('5555555555554444');
    await demo.settle();
    expect((await order(declined)).status).toBe('failed');
    expect((await order(declined)).timeline[1]!.detail).toBe('insufficient funds');
    expect((await order(approved)).status).toBe('paid');
    expect(draws).toEqual([]);
  });

  test('timeout path: an unpaid order is cancelled after 15 s of virtual time, not before', async () => {
    demo = await startDemoTestApp();
    const id = await placeOrder(TEST_CARDS.NO_ANSWER);
    await demo.settle();
    expect((await order(id)).status).toBe('created');

    await demo.tb.clock.advance('14s');
    await demo.settle();
    expect((await order(id)).status).toBe('created');

    await demo.tb.clock.advance('1s');
    await demo.settle();
    const cancelled = await order(id);
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.timeline.map((e) => [e.event, e.tag])).toEqual([
      ['created', 'created'],
      ['cancelled', 'timeout'],
    ]);
    expect(cancelled.timeline[1]!.msgId).toBe(msgIdOf(ORDER_TIMEOUTS_TOPIC, 'timeout'));
    expect(tags(ORDERS_TOPIC)).toEqual(['created', 'cancelled']);
    expect(tags(ORDER_TIMEOUTS_TOPIC)).toEqual(['timeout']);
    expect(demo.tb.published(PAYMENTS_TOPIC)).toEqual([]);

    // a payment arriving after the timeout is too late: the order stays cancelled
    const late: PaymentResultEvent = {
      orderId: id,
      paymentId: 'pay-late',
      status: 'succeeded',
      amountCents: 1999,
    };
    await demo.app.get(RocketTemplate).send('payments:succeeded', late); // payments is a normal topic
    await demo.settle();
    expect(await order(id)).toEqual(cancelled);
  });

  test('redelivery changes nothing: a handler that fails after its commit is retried, duplicates are ignored', async () => {
    demo = await startDemoTestApp();
    const service = demo.app.get(OrderService);
    const applyPayment = service.applyPayment.bind(service);
    let crashes = 0;
    jest.spyOn(service, 'applyPayment').mockImplementation((event, delivery) => {
      const result = applyPayment(event, delivery);
      if (crashes++ === 0) throw new Error('crashed after the commit, before the ack');
      return result;
    });
    const transition = jest.spyOn(demo.app.get(OrderRepository), 'transition');
    const id = await placeOrder(TEST_CARDS.APPROVED);
    await demo.settle();
    const paid = await order(id);
    expect(paid.status).toBe('paid');

    await demo.tb.clock.advance('10s'); // the first retry backoff
    await demo.settle();
    expect(crashes).toBe(2); // redelivered once
    expect(await order(id)).toEqual(paid);
    // the inbox knew the redelivered copy (by the id it was first stored under): no second attempt
    expect(transition).toHaveBeenCalledTimes(1);
    // the retry is a copy with its own id; the timeline keeps the id of the message first stored
    expect(paid.timeline[1]!.msgId).toBe(msgIdOf(PAYMENTS_TOPIC, 'succeeded'));

    // duplicates: the same payment outcome and the same order again
    const template = demo.app.get(RocketTemplate);
    const payment = demo.tb.published(PAYMENTS_TOPIC)[0]!;
    await template.send('payments:failed', { ...JSON.parse(payment.body.toString()), status: 'failed' });
    const created = demo.tb.published(ORDERS_TOPIC).find((m) => m.tag === 'created')!;
    await template.sendOrderly('orders:created', JSON.parse(created.body.toString()), id, { keys: [id] });
    await demo.settle();
    expect(await order(id)).toEqual(paid);
    expect(demo.app.get(PaymentRepository).count()).toBe(1);
    expect(tags(PAYMENTS_TOPIC)).toEqual(['succeeded', 'failed']); // the second charge was never made
    expect(tags(ORDERS_TOPIC)).toEqual(['created', 'paid', 'created']);
  });

  test('transaction check-back: a lost COMMIT is answered from the payment table and the order is paid', async () => {
    demo = await startDemoTestApp();
    const tx = demo.app.get(PaymentTransactionsListener);
    const execute = tx.executeLocalTransaction.bind(tx);
    // the payment row commits, but the answer to the broker is lost (say, the process died)
    jest.spyOn(tx, 'executeLocalTransaction').mockImplementation(async (message) => {
      await execute(message);
      return 'UNKNOWN';
    });
    const check = jest.spyOn(tx, 'checkLocalTransaction');
    const id = await placeOrder(TEST_CARDS.APPROVED);
    await demo.settle();
    expect((await order(id)).status).toBe('created');
    expect(demo.tb.published(PAYMENTS_TOPIC)).toEqual([]); // the half message is invisible
    expect(demo.app.get(PaymentRepository).findByOrder(id)).toBeDefined();

    await demo.tb.clock.advance('10s'); // past the broker's transaction timeout (6 s): checked back
    await demo.settle();
    expect(check).toHaveBeenCalledTimes(1);
    expect(await check.mock.results[0]!.value).toBe('COMMIT');
    expect((await order(id)).status).toBe('paid');
  });

  test('transaction check-back: no payment row means ROLLBACK, and the order times out', async () => {
    demo = await startDemoTestApp();
    const tx = demo.app.get(PaymentTransactionsListener);
    jest.spyOn(tx, 'executeLocalTransaction').mockImplementation(async () => {
      throw new Error('payment database unavailable');
    });
    const check = jest.spyOn(tx, 'checkLocalTransaction');
    const id = await placeOrder(TEST_CARDS.APPROVED);
    await demo.settle();
    await demo.tb.clock.advance('10s');
    await demo.settle();
    expect(check).toHaveBeenCalledTimes(1);
    expect(await check.mock.results[0]!.value).toBe('ROLLBACK');
    expect(demo.tb.published(PAYMENTS_TOPIC)).toEqual([]);
    expect(demo.app.get(PaymentRepository).count()).toBe(0);

    await demo.tb.clock.advance('5s');
    await demo.settle();
    expect((await order(id)).status).toBe('cancelled');
  });

  test('HTTP: bad orders are refused with 400, unknown orders are 404', async () => {
    demo = await startDemoTestApp();
    expect((await demo.http('POST', '/orders', { amountCents: 0, card: TEST_CARDS.APPROVED })).status).toBe(
      400,
    );
    expect((await demo.http('POST', '/orders', { amountCents: 1.5, card: TEST_CARDS.APPROVED })).status).toBe(
      400,
    );
    const badCard = await demo.http('POST', '/orders', { amountCents: 100, card: '42' });
    expect(badCard.status).toBe(400);
    expect(badCard.body.message).toMatch(/card/);
    expect((await demo.http('POST', '/orders', '[1]')).status).toBe(400);
    expect((await demo.http('GET', '/orders/ord-nope')).status).toBe(404);
    expect(demo.tb.published(ORDERS_TOPIC)).toEqual([]);
  });
});
