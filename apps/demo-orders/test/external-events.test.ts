import 'reflect-metadata';
import { RocketOutbox, RocketTemplate } from '@rocketnest/nest-transport';
import { ORDER_NOTES_TOPIC, ORDERS_TOPIC, TEST_CARDS } from '../src/contracts';
import { OrderRepository } from '../src/order-service/order.repository';
import {
  TEST_EXTERNAL_TOKEN,
  sqliteOutbox,
  startDemoTestApp,
  type DemoTestApp,
} from './support/demo-test-app';

let demo: DemoTestApp;

afterEach(async () => {
  await demo?.close();
});

const ENVELOPE = 'application/vnd.rocketnest.message+json';
const AUTH = { authorization: `Bearer ${TEST_EXTERNAL_TOKEN}` };
const NOTES = '/external/topics/order-notes/messages';

interface Problem {
  status: number;
  code: string;
  detail: string;
}

async function placeOrder(): Promise<string> {
  const created = await demo.http('POST', '/orders', { amountCents: 500, card: TEST_CARDS.APPROVED });
  expect(created.status).toBe(201);
  await demo.settle();
  return created.body.id;
}

function postNote(body: unknown, headers: Record<string, string> = AUTH) {
  return demo.http<{ outboxId: string; state: string } & Partial<Problem>>('POST', NOTES, body, {
    'content-type': ENVELOPE,
    ...headers,
  });
}

describe('transactional outbox and inbox in the order service', () => {
  test('an order and its outbox rows commit together: a failed outbox write leaves no order', async () => {
    demo = await startDemoTestApp();
    const rocketOutbox = demo.app.get(RocketOutbox);
    const outbox = sqliteOutbox(demo.app);
    const add = outbox.add.bind(outbox);
    let calls = 0;
    jest.spyOn(outbox, 'add').mockImplementation(((db: never, message: never) => {
      if (++calls === 2) throw new Error('disk full while writing the timeout row');
      return add(db, message);
    }) as typeof outbox.add);
    expect(rocketOutbox.outbox).toBe(outbox);
    const refused = await demo.http('POST', '/orders', { amountCents: 500, card: TEST_CARDS.APPROVED });
    expect(refused.status).toBe(500);
    await demo.settle();
    expect((await demo.http<unknown[]>('GET', '/orders')).body).toEqual([]);
    expect(outbox.counts()).toEqual({ pending: 0, published: 0, parked: 0 });
    expect(demo.tb.published(ORDERS_TOPIC)).toEqual([]);

    const placed = await demo.http('POST', '/orders', { amountCents: 500, card: TEST_CARDS.APPROVED });
    expect(placed.status).toBe(201);
    await demo.settle();
    expect((await demo.http('GET', `/orders/${placed.body.id}`)).body.status).toBe('paid');
    // created and timeout (delayed) published by the relay, then the paid announcement
    expect(outbox.counts()).toEqual({ pending: 0, published: 3, parked: 0 });
  });

  test('the inbox: a message the relay sends again (same outbox row) is processed once', async () => {
    demo = await startDemoTestApp();
    const id = await placeOrder();
    const accepted = await postNote({ body: { orderId: id, text: 'left at the door' }, tag: 'note' });
    expect(accepted.status).toBe(202);
    await demo.settle();
    const [note] = demo.tb.published(ORDER_NOTES_TOPIC);
    expect(note!.properties.OUTBOX_ID).toBe(accepted.body.outboxId);

    // a relay that died after the broker stored the message and before marking the row sends it again
    const template = demo.app.get(RocketTemplate);
    const resend = { keys: [...note!.keys], properties: { OUTBOX_ID: note!.properties.OUTBOX_ID! } };
    await template.sendOrderly('order-notes:note', JSON.parse(note!.body.toString()), id, resend);
    await demo.settle();
    expect(demo.tb.published(ORDER_NOTES_TOPIC)).toHaveLength(2);
    const notes = (await demo.http('GET', `/orders/${id}`)).body.timeline.filter((e) => e.event === 'note');
    expect(notes).toEqual([expect.objectContaining({ detail: 'left at the door', msgId: note!.msgId })]);

    // a different row with the same text is a new note
    await postNote({ body: { orderId: id, text: 'left at the door' }, tag: 'note' });
    await demo.settle();
    const after = (await demo.http('GET', `/orders/${id}`)).body.timeline.filter((e) => e.event === 'note');
    expect(after).toHaveLength(2);
  });

  test('a handler that fails rolls its inbox key back with its writes, so the redelivery is processed', async () => {
    demo = await startDemoTestApp();
    const id = await placeOrder();
    // fails inside the inbox's transaction, after the inbox key was inserted
    const repository = demo.app.get(OrderRepository);
    const addNote = repository.addNote.bind(repository);
    jest
      .spyOn(repository, 'addNote')
      .mockImplementationOnce(() => {
        throw new Error('database busy');
      })
      .mockImplementation(addNote);
    await postNote({ body: { orderId: id, text: 'fragile' }, tag: 'note' });
    await demo.settle();
    expect((await demo.http('GET', `/orders/${id}`)).body.timeline.some((e) => e.event === 'note')).toBe(
      false,
    );
    expect(repository.addNote).toHaveBeenCalledTimes(1);
    await demo.tb.clock.advance('10s'); // the retry backoff
    await demo.settle();
    expect(repository.addNote).toHaveBeenCalledTimes(2);
    const notes = (await demo.http('GET', `/orders/${id}`)).body.timeline.filter((e) => e.event === 'note');
    expect(notes.map((e) => e.detail)).toEqual(['fragile']);
  });
});

describe('external events over HTTP (@rocketnest/express produce router, outbox mode)', () => {
  test('a note for an order is accepted (202), published with the order as message group, and shown in the timeline', async () => {
    demo = await startDemoTestApp();
    const id = await placeOrder();
    const accepted = await postNote({ body: { orderId: id, text: 'courier picked it up' }, tag: 'note' });
    expect(accepted.status).toBe(202);
    expect(accepted.body).toMatchObject({ topic: ORDER_NOTES_TOPIC, state: 'pending' });
    await demo.settle();
    const [note] = demo.tb.published(ORDER_NOTES_TOPIC);
    expect(note).toMatchObject({ tag: 'note', messageGroup: id });
    expect(note!.keys).toContain(id);
    const timeline = (await demo.http('GET', `/orders/${id}`)).body.timeline;
    expect(timeline.map((e) => e.event)).toEqual(['created', 'paid', 'note']);
    expect(timeline[2]).toMatchObject({
      topic: ORDER_NOTES_TOPIC,
      msgId: note!.msgId,
      detail: 'courier picked it up',
    });
  });

  test('refusals: no or wrong token 401, another tag 403, another topic 404, unknown order or bad body 400', async () => {
    demo = await startDemoTestApp();
    const id = await placeOrder();
    const note = { body: { orderId: id, text: 'hello' }, tag: 'note' };

    const anonymous = await postNote(note, {});
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect((await postNote(note, { authorization: 'Bearer nope' })).status).toBe(401);
    expect((await postNote({ ...note, tag: 'paid' })).status).toBe(403);
    const otherTopic = await demo.http('POST', '/external/topics/orders/messages', note, {
      'content-type': ENVELOPE,
      ...AUTH,
    });
    expect(otherTopic.status).toBe(404);
    const unknown = await postNote({ body: { orderId: 'ord-nope', text: 'hello' }, tag: 'note' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.detail).toMatch(/no order "ord-nope"/);
    expect((await postNote({ body: { orderId: id }, tag: 'note' })).status).toBe(400);

    await demo.settle();
    expect(demo.tb.published(ORDER_NOTES_TOPIC)).toEqual([]);
    expect(sqliteOutbox(demo.app).counts().pending).toBe(0);
  });

  test('an Idempotency-Key replays the first answer and writes nothing twice', async () => {
    demo = await startDemoTestApp();
    const id = await placeOrder();
    const note = { body: { orderId: id, text: 'signed for' }, tag: 'note' };
    const first = await postNote(note, { ...AUTH, 'idempotency-key': 'courier-42' });
    const again = await postNote(note, { ...AUTH, 'idempotency-key': 'courier-42' });
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.body.outboxId).toBe(first.body.outboxId);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    await demo.settle();
    expect(demo.tb.published(ORDER_NOTES_TOPIC)).toHaveLength(1);
  });
});
