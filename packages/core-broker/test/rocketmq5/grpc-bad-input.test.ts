import * as grpc from '@grpc/grpc-js';
import { Broker } from '../../src/broker/broker';
import { METHODS, type MessageV2, MessageType, FilterType, ClientType } from '../../src/rocketmq5/codec';
import { Code } from '../../src/rocketmq5/status';
import { GrpcServer } from '../../src/server/grpc-server';
import { MemoryStore } from '../../src/store/memory-store';
import { RawClient } from './grpc-raw-client';

// Bad input at the gRPC port: each gets RocketMQ 5's status code, never a crash or a hang, and the
// server keeps serving afterwards.

let store: MemoryStore;
let broker: Broker;
let server: GrpcServer;
let client: RawClient;
let ids = 0;

const ENDPOINTS = { scheme: 1, addresses: [{ host: '127.0.0.1', port: 8081 }] };
const message = (
  topic: string,
  over: Partial<NonNullable<MessageV2['systemProperties']>> = {},
  body = Buffer.from('x'),
  userProperties: Record<string, string> = {},
): MessageV2 => ({
  topic: { name: topic },
  userProperties,
  systemProperties: {
    messageId: `01AA${String(++ids).padStart(30, '0')}`,
    messageType: MessageType.NORMAL,
    ...over,
  },
  body,
});
const send = async (m: MessageV2) => (await client.unary('SendMessage', { messages: [m] })).status.code;
const receiveRequest = (topic: string, group: string, over: Record<string, unknown> = {}) => ({
  group: { name: group },
  messageQueue: { topic: { name: topic }, id: -1, permission: 4, broker: null, acceptMessageTypes: [] },
  filterExpression: { type: FilterType.TAG, expression: '*' },
  batchSize: 16,
  invisibleDuration: { seconds: 30 },
  autoRenew: false,
  longPollingTimeout: { seconds: 0 },
  ...over,
});

beforeAll(async () => {
  store = await MemoryStore.create({ maxBytes: 64 * 1024 * 1024, retentionIntervalMs: 0 });
  broker = await Broker.start({ store, brokerName: 'broker-a' });
  broker.createTopic({ topic: 'Plain', queueCount: 2 });
  broker.createTopic({ topic: 'Ordered', queueCount: 2, fifo: true });
  broker.createTopic({ topic: 'Handles', queueCount: 1 });
  broker.createTopic({ topic: 'Quiet', queueCount: 1 });
  server = await GrpcServer.start({ broker, port: 0 });
  client = new RawClient(`127.0.0.1:${server.port}`);
});

afterAll(async () => {
  client.close();
  await broker.close();
  await server.close();
  await store.close();
});

afterEach(async () => {
  // whatever the test sent, the server still answers
  const route = await client.unary('QueryRoute', { topic: { name: 'Plain' }, endpoints: ENDPOINTS });
  expect(route.status.code).toBe(Code.OK);
});

test('unknown methods and the queue-level methods answer gRPC UNIMPLEMENTED', async () => {
  for (const path of [
    '/apache.rocketmq.v2.MessagingService/PullMessage',
    '/apache.rocketmq.v2.MessagingService/QueryOffset',
    '/apache.rocketmq.v2.MessagingService/NoSuchMethod',
    '/some.other.Service/Call',
  ]) {
    await expect(client.unaryRaw(path, Buffer.alloc(0))).rejects.toMatchObject({
      code: grpc.status.UNIMPLEMENTED,
    });
  }
});

test('malformed protobuf is answered BAD_REQUEST in the response status', async () => {
  for (const bytes of [
    Buffer.from([0xff, 0xff, 0xff]),
    Buffer.from([0x0a, 0x7f, 0x01]),
    Buffer.from('not protobuf at all'),
  ]) {
    const reply = METHODS.SendMessage.response.decode(await client.unaryRaw('SendMessage', bytes));
    expect(reply.status.code).toBe(Code.BAD_REQUEST);
    expect(reply.status.message).toMatch(/does not decode as protobuf/);
  }
});

test('a call without x-mq-client-id gets CLIENT_ID_REQUIRED', async () => {
  const anonymous = new RawClient(`127.0.0.1:${server.port}`, '');
  try {
    const reply = await anonymous.unary('Heartbeat', { clientType: ClientType.PRODUCER });
    expect(reply.status.code).toBe(Code.CLIENT_ID_REQUIRED);
    const frames = await anonymous.receive(receiveRequest('Plain', 'G') as never);
    expect(frames[0]!.status?.code).toBe(Code.CLIENT_ID_REQUIRED);
  } finally {
    anonymous.close();
  }
});

test('bodies: empty, just over 4 MiB, and frames over the inbound bound', async () => {
  expect(await send(message('Plain', {}, Buffer.alloc(0)))).toBe(Code.MESSAGE_BODY_EMPTY);
  expect(await send(message('Plain', {}, Buffer.alloc(4 * 1024 * 1024 + 1)))).toBe(
    Code.MESSAGE_BODY_TOO_LARGE,
  );
  expect(await send(message('Plain', {}, Buffer.alloc(4 * 1024 * 1024)))).toBe(Code.OK);
  // beyond the bound on inbound messages, the transport refuses it before anything is decoded
  await expect(
    client.unary('SendMessage', { messages: [message('Plain', {}, Buffer.alloc(9 * 1024 * 1024))] }),
  ).rejects.toMatchObject({
    code: grpc.status.RESOURCE_EXHAUSTED,
  });
});

test('message type must match the topic and the message properties', async () => {
  expect(await send(message('Plain', { messageGroup: 'g', messageType: MessageType.FIFO }))).toBe(
    Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
  );
  expect(await send(message('Ordered', {}))).toBe(Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE);
  expect(await send(message('Plain', { messageGroup: 'g' }))).toBe(Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE); // declared NORMAL
  expect(await send(message('Plain', { messageType: MessageType.DELAY }))).toBe(
    Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
  ); // no timestamp
  expect(
    await send(
      message('Plain', {
        messageType: MessageType.TRANSACTION,
        deliveryTimestamp: { seconds: Math.floor(Date.now() / 1000) + 60 },
      }),
    ),
  ).toBe(Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE);
  expect(await send(message('Ordered', { messageGroup: 'g', messageType: MessageType.FIFO }))).toBe(Code.OK);
  expect(
    await send(
      message('Plain', {
        messageType: MessageType.DELAY,
        deliveryTimestamp: { seconds: Math.floor(Date.now() / 1000) + 2 * 86_400 },
      }),
    ),
  ).toBe(Code.ILLEGAL_DELIVERY_TIME);
});

test('fields a client sets wrong get their own code', async () => {
  expect(await send(message('Plain', { messageId: '' }))).toBe(Code.ILLEGAL_MESSAGE_ID);
  expect(await send(message('bad topic!'))).toBe(Code.ILLEGAL_TOPIC);
  expect(await send(message('%RETRY%G'))).toBe(Code.ILLEGAL_TOPIC);
  expect(await send(message('NoSuchTopic'))).toBe(Code.TOPIC_NOT_FOUND);
  expect(await send(message('Plain', { tag: 'a||b' }))).toBe(Code.ILLEGAL_MESSAGE_TAG);
  expect(await send(message('Plain', { tag: '  ' }))).toBe(Code.ILLEGAL_MESSAGE_TAG);
  expect(await send(message('Plain', { keys: ['two words'] }))).toBe(Code.ILLEGAL_MESSAGE_KEY);
  expect(await send(message('Plain', {}, Buffer.from('x'), { UNIQ_KEY: 'mine' }))).toBe(
    Code.ILLEGAL_MESSAGE_PROPERTY_KEY,
  );
  expect(await send(message('Plain', {}, Buffer.from('x'), { __ORIGIN_TOPIC: 'x' }))).toBe(
    Code.ILLEGAL_MESSAGE_PROPERTY_KEY,
  );
  expect(
    await send(message('Ordered', { messageGroup: 'g'.repeat(65), messageType: MessageType.FIFO })),
  ).toBe(Code.ILLEGAL_MESSAGE_GROUP);
  const mixed = await client.unary('SendMessage', { messages: [message('Plain'), message('Ordered')] });
  expect(mixed.status.code).toBe(Code.MESSAGE_CORRUPTED);
  expect((await client.unary('SendMessage', { messages: [] })).status.code).toBe(Code.MESSAGE_CORRUPTED);
  const frames = await client.receive(
    receiveRequest('Plain', 'G', { invisibleDuration: { seconds: 1 } }) as never,
  );
  expect(frames[0]!.status?.code).toBe(Code.ILLEGAL_INVISIBLE_TIME);
  const sql = await client.receive(
    receiveRequest('Plain', 'G', { filterExpression: { type: FilterType.SQL, expression: 'a >' } }) as never,
  );
  expect(sql[0]!.status?.code).toBe(Code.ILLEGAL_FILTER_EXPRESSION);
  const group = await client.receive(receiveRequest('Plain', 'CID_RMQ_SYS_x y') as never);
  expect(group[0]!.status?.code).toBe(Code.ILLEGAL_CONSUMER_GROUP);
  expect(
    (await client.unary('QueryRoute', { topic: { name: 'NoSuchTopic' }, endpoints: ENDPOINTS })).status.code,
  ).toBe(Code.TOPIC_NOT_FOUND);
  expect((await client.unary('QueryRoute', { topic: { name: 'Plain' }, endpoints: null })).status.code).toBe(
    Code.ILLEGAL_ACCESS_POINT,
  );
  const tx = await client.unary('EndTransaction', {
    topic: { name: 'Plain' },
    messageId: 'm',
    transactionId: 'nope',
    resolution: 1,
    source: 1,
    traceContext: '',
  });
  expect(tx.status.code).toBe(Code.INVALID_TRANSACTION_ID);
});

test('an empty receive holds the call, then ends with MESSAGE_NOT_FOUND before the deadline; frames come status first, timestamp last', async () => {
  const frames = await client.receive(
    receiveRequest('Quiet', 'EmptyG', { longPollingTimeout: { seconds: 20 } }) as never,
    1_500,
  );
  expect(frames.map((f) => Object.keys(f).find((k) => (f as Record<string, unknown>)[k] != null))).toEqual([
    'status',
    'deliveryTimestamp',
  ]);
  expect(frames[0]!.status!.code).toBe(Code.MESSAGE_NOT_FOUND);
});

test('forged, tampered, stale and foreign receipt handles get INVALID_RECEIPT_HANDLE; nothing moves', async () => {
  expect(await send(message('Handles', { tag: 'h' }, Buffer.from('one')))).toBe(Code.OK);
  expect(await send(message('Handles', { tag: 'h' }, Buffer.from('two')))).toBe(Code.OK);
  const frames = await client.receive(receiveRequest('Handles', 'HG', { batchSize: 2 }) as never);
  const [a, b] = frames.filter((f) => f.message).map((f) => f.message!.systemProperties!);
  const ack = async (handle: string) =>
    (
      await client.unary('AckMessage', {
        group: { name: 'HG' },
        topic: { name: 'Handles' },
        entries: [{ messageId: 'm', receiptHandle: handle }],
      })
    ).entries[0]!.status.code;
  expect(await ack('garbage')).toBe(Code.INVALID_RECEIPT_HANDLE);
  expect(await ack('')).toBe(Code.INVALID_RECEIPT_HANDLE);
  expect(await ack('x'.repeat(100_000))).toBe(Code.INVALID_RECEIPT_HANDLE);
  const handle = a!.receiptHandle!;
  const flipped = handle[5] === 'A' ? 'B' : 'A';
  expect(await ack(handle.slice(0, 5) + flipped + handle.slice(6))).toBe(Code.INVALID_RECEIPT_HANDLE);
  // b's pop handle with a's stored id: refused before anything is dead-lettered
  const [bBroker] = b!.receiptHandle!.split('.');
  const [, aStored] = handle.split('.');
  const forward = await client.unary('ForwardMessageToDeadLetterQueue', {
    group: { name: 'HG' },
    topic: { name: 'Handles' },
    receiptHandle: `${bBroker}.${aStored}`,
    messageId: 'm',
    deliveryAttempt: 1,
    maxDeliveryAttempts: 16,
  });
  expect(forward.status.code).toBe(Code.INVALID_RECEIPT_HANDLE);
  expect(broker.getTopic('%DLQ%HG')).toBeUndefined();
  // the right handle acks once; the second ack of the same delivery is stale
  expect(await ack(handle)).toBe(Code.OK);
  expect(await ack(handle)).toBe(Code.INVALID_RECEIPT_HANDLE);
  // another group may not ack with it
  const other = await client.unary('AckMessage', {
    group: { name: 'OtherG' },
    topic: { name: 'Handles' },
    entries: [{ messageId: 'm', receiptHandle: b!.receiptHandle! }],
  });
  expect(other.entries[0]!.status.code).toBe(Code.INVALID_RECEIPT_HANDLE);
  // and the genuine forward of b dead-letters it under its client id
  const genuine = await client.unary('ForwardMessageToDeadLetterQueue', {
    group: { name: 'HG' },
    topic: { name: 'Handles' },
    receiptHandle: b!.receiptHandle!,
    messageId: b!.messageId,
    deliveryAttempt: 1,
    maxDeliveryAttempts: 16,
  });
  expect(genuine.status.code).toBe(Code.OK);
  const dead = await client.receive(receiveRequest('%DLQ%HG', 'DlqReader') as never);
  // the group's dead-letter topic is readable, and names where the message came from
  expect(dead[0]!.status!.code).toBe(Code.OK);
  const deadMessage = dead[1]!.message!;
  expect(deadMessage.body.toString()).toBe('two');
  expect(deadMessage.systemProperties!.messageId).toBe(b!.messageId);
  expect(deadMessage.systemProperties!.deadLetterQueue).toMatchObject({
    topic: 'Handles',
    messageId: b!.messageId,
  });
  expect(await send(message('%DLQ%HG'))).toBe(Code.ILLEGAL_TOPIC);
});

test('Telemetry: settings without publishing or subscription fail the stream with INVALID_ARGUMENT; good settings get the server part', async () => {
  const bad = await client.telemetry([{ settings: { clientType: ClientType.PRODUCER } }]);
  expect(bad.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
  const blank = await client.telemetry([
    {
      settings: {
        clientType: ClientType.PRODUCER,
        publishing: { topics: [{ name: '' }], maxBodySize: 0, validateMessageType: false },
      },
    },
  ]);
  expect(blank.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
  const good = await client.telemetry([
    {
      settings: {
        clientType: ClientType.PRODUCER,
        publishing: { topics: [{ name: 'Plain' }], maxBodySize: 0, validateMessageType: false },
      },
    },
  ]);
  expect(good.error).toBeUndefined();
  const reply = good.replies[0]!;
  expect(reply.status?.code).toBe(Code.OK);
  expect(reply.settings?.publishing?.maxBodySize).toBe(4 * 1024 * 1024);
  expect(reply.settings?.publishing?.validateMessageType).toBe(true);
  expect(reply.settings?.backoffPolicy?.exponentialBackoff).toBeTruthy();
  expect(broker.producerIds('Plain')).toContain('raw-client@1');
  good.call.end();
  const malformed = await new Promise<grpc.ServiceError | undefined>((resolve) => {
    const call = client.client.makeBidiStreamRequest(
      '/apache.rocketmq.v2.MessagingService/Telemetry',
      (b: Buffer) => b,
      (b: Buffer) => b,
      client.metadata(),
    );
    call.on('error', resolve);
    call.on('end', () => resolve(undefined));
    call.on('data', () => undefined);
    call.write(Buffer.from([0xff, 0xff, 0xff]));
  });
  expect(malformed?.code).toBe(grpc.status.INVALID_ARGUMENT);
});

test("Telemetry opened with the Java client's 60 × 365-day timeout stays open (grpc-js would wrap it to ~1 ms)", async () => {
  const days = 60 * 365;
  const settings = {
    settings: {
      clientType: ClientType.PRODUCER,
      publishing: { topics: [{ name: 'Plain' }], maxBodySize: 0, validateMessageType: false },
    },
  };
  // The Settings go out 200 ms after the stream opened: long after a wrapped 1 ms deadline.
  const opened = await client.telemetry(
    [settings],
    1,
    client.metadata(),
    { deadline: Date.now() + days * 24 * 3_600_000 },
    200,
  );
  expect(opened.error).toBeUndefined();
  expect(opened.replies[0]?.status?.code).toBe(Code.OK);
  opened.call.end();
});

test('RecallMessage: a delayed message recalled before it is due is never delivered; bad handles are refused', async () => {
  const delayed = message('Plain', {
    messageType: MessageType.DELAY,
    deliveryTimestamp: { seconds: Math.floor(Date.now() / 1000) + 2 },
  });
  const sent = await client.unary('SendMessage', { messages: [delayed] });
  expect(sent.status.code).toBe(Code.OK);
  const handle = sent.entries[0]!.recallHandle!;
  expect(handle).toMatch(/^[A-Za-z0-9_-]+$/);
  // a plain message gets none
  const plain = await client.unary('SendMessage', { messages: [message('Plain')] });
  expect(plain.entries[0]!.recallHandle ?? '').toBe('');
  const recall = (topic: string, recallHandle: string) =>
    client.unary('RecallMessage', { topic: { name: topic }, recallHandle });
  expect((await recall('Plain', 'forged')).status.code).toBe(Code.BAD_REQUEST);
  expect((await recall('Plain', '')).status.code).toBe(Code.BAD_REQUEST);
  expect((await recall('Ordered', handle)).status.code).toBe(Code.BAD_REQUEST);
  const recalled = await recall('Plain', handle);
  expect(recalled).toEqual({
    status: expect.objectContaining({ code: Code.OK }),
    messageId: delayed.systemProperties!.messageId,
  });
  // again before its time: accepted, as Apache accepts it
  expect((await recall('Plain', handle)).status.code).toBe(Code.OK);
  // past its delivery time (2 s), a group reading the topic from its start gets only the plain one
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  const got: string[] = [];
  for (let i = 0; i < 5; i++) {
    const frames = await client.receive(
      receiveRequest('Plain', 'RecallReader', { longPollingTimeout: { seconds: 1 } }),
    );
    got.push(...frames.flatMap((f) => (f.message ? [f.message.systemProperties!.messageId] : [])));
  }
  expect(got).toContain(plain.entries[0]!.messageId);
  expect(got).not.toContain(delayed.systemProperties!.messageId);
  // past its time it is gone: NOT_FOUND
  expect((await recall('Plain', handle)).status.code).toBe(Code.NOT_FOUND);
});
