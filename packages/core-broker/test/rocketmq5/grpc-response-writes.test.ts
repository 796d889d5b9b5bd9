import { Broker } from '../../src/broker/broker';
import { FilterType, MessageType } from '../../src/rocketmq5/codec';
import { Code } from '../../src/rocketmq5/status';
import { GrpcServer } from '../../src/server/grpc-server';
import { MemoryStore } from '../../src/store/memory-store';
import { RawClient } from './grpc-raw-client';

// Responses go to grpc-js's call directly (grpc-server.ts, `underlyingCall`), frames and trailers
// in one turn: a ReceiveMessage's frames not through the object-mode Writable that waits for each
// frame's http2 write before the next, a unary answer's trailers not after its message's write.
// The field this relies on is grpc-js's own: these fail if an upgrade renames it and the server
// falls back to the slow path.

// eslint-disable-next-line @typescript-eslint/no-require-imports -- the grpc-js class the fast path bypasses
const { ServerWritableStreamImpl } = require('@grpc/grpc-js/build/src/server-call') as {
  ServerWritableStreamImpl: { prototype: { write: (...args: unknown[]) => boolean } };
};

// eslint-disable-next-line @typescript-eslint/no-require-imports -- the grpc-js call both paths end in
const { BaseServerInterceptingCall } = require('@grpc/grpc-js/build/src/server-interceptors') as {
  BaseServerInterceptingCall: {
    prototype: {
      sendMessage: (message: unknown, callback: () => void) => void;
      sendStatus: (status: unknown) => void;
    };
  };
};

/** What the server's calls do, in order: 'message', 'written' (a message's write completed), 'status'. */
async function eventsOf(run: () => Promise<unknown>): Promise<string[]> {
  const events: string[] = [];
  const proto = BaseServerInterceptingCall.prototype;
  const { sendMessage, sendStatus } = proto;
  const messageSpy = jest.spyOn(proto, 'sendMessage').mockImplementation(function (
    this: unknown,
    message: unknown,
    callback: () => void,
  ) {
    events.push('message');
    sendMessage.call(this, message, () => {
      events.push('written');
      callback();
    });
  });
  const statusSpy = jest.spyOn(proto, 'sendStatus').mockImplementation(function (
    this: unknown,
    status: unknown,
  ) {
    events.push('status');
    sendStatus.call(this, status);
  });
  try {
    await run();
  } finally {
    messageSpy.mockRestore();
    statusSpy.mockRestore();
  }
  return events;
}

let store: MemoryStore;
let broker: Broker;
let server: GrpcServer;
let client: RawClient;

beforeAll(async () => {
  store = await MemoryStore.create({ maxBytes: 16 * 1024 * 1024, retentionIntervalMs: 0 });
  broker = await Broker.start({ store, brokerName: 'broker-a' });
  broker.createTopic({ topic: 'Batch', queueCount: 1 });
  server = await GrpcServer.start({ broker, port: 0 });
  client = new RawClient(`127.0.0.1:${server.port}`);
});

afterAll(async () => {
  client.close();
  await broker.close();
  await server.close();
  await store.close();
});

test('a batch of 32 arrives as status, 32 messages in queue order, delivery timestamp, then an OK end, without the Writable path', async () => {
  const sent: string[] = [];
  for (let i = 0; i < 40; i++) {
    const messageId = `01BB${String(i).padStart(30, '0')}`;
    const r = await client.unary('SendMessage', {
      messages: [
        {
          topic: { name: 'Batch' },
          userProperties: {},
          systemProperties: { messageId, messageType: MessageType.NORMAL },
          body: Buffer.from(`m${i}`),
        },
      ],
    });
    expect(r.status.code).toBe(Code.OK);
    sent.push(messageId);
  }
  const write = jest.spyOn(ServerWritableStreamImpl.prototype, 'write');
  try {
    const frames = await client.receive({
      group: { name: 'batch-group' },
      messageQueue: { topic: { name: 'Batch' }, id: -1, permission: 4, broker: null, acceptMessageTypes: [] },
      filterExpression: { type: FilterType.TAG, expression: '*' },
      batchSize: 32,
      invisibleDuration: { seconds: 30 },
      autoRenew: false,
      longPollingTimeout: { seconds: 0 },
    });
    expect(frames).toHaveLength(34);
    expect(frames[0]!.status?.code).toBe(Code.OK);
    expect(frames.slice(1, 33).map((f) => f.message?.systemProperties?.messageId)).toEqual(sent.slice(0, 32));
    expect(frames[33]!.deliveryTimestamp).toBeDefined();
    expect(write).not.toHaveBeenCalled();
    // an empty queue (8 left, then none): the same path ends with MESSAGE_NOT_FOUND after its frames
    const rest = await client.receive({
      group: { name: 'batch-group' },
      messageQueue: { topic: { name: 'Batch' }, id: -1, permission: 4, broker: null, acceptMessageTypes: [] },
      filterExpression: { type: FilterType.TAG, expression: '*' },
      batchSize: 32,
      invisibleDuration: { seconds: 30 },
      autoRenew: false,
      longPollingTimeout: { seconds: 0 },
    });
    expect(rest).toHaveLength(10);
    const empty = await client.receive({
      group: { name: 'batch-group' },
      messageQueue: { topic: { name: 'Batch' }, id: -1, permission: 4, broker: null, acceptMessageTypes: [] },
      filterExpression: { type: FilterType.TAG, expression: '*' },
      batchSize: 32,
      invisibleDuration: { seconds: 30 },
      autoRenew: false,
      longPollingTimeout: { seconds: 0 },
    });
    expect(empty.map((f) => f.status?.code ?? 'timestamp')).toEqual([Code.MESSAGE_NOT_FOUND, 'timestamp']);
    expect(write).not.toHaveBeenCalled();
  } finally {
    write.mockRestore();
  }
});

test('a unary answer: its trailers are queued before its message has been written, not after', async () => {
  const events = await eventsOf(() =>
    client.unary('QueryRoute', { topic: { name: 'Batch' }, endpoints: null }),
  );
  expect(events).toEqual(['message', 'status', 'written']);
});

test('a ReceiveMessage batch: every frame and the trailers are queued before the first write completes', async () => {
  const events = await eventsOf(() =>
    client.receive({
      group: { name: 'events-group' },
      messageQueue: { topic: { name: 'Batch' }, id: -1, permission: 4, broker: null, acceptMessageTypes: [] },
      filterExpression: { type: FilterType.TAG, expression: '*' },
      batchSize: 32,
      invisibleDuration: { seconds: 30 },
      autoRenew: false,
      longPollingTimeout: { seconds: 0 },
    }),
  );
  // the first test left all 40 messages invisible to batch-group; this group sees 32 of them
  expect(events.slice(0, 35)).toEqual([...Array<string>(34).fill('message'), 'status']);
  expect(events.slice(35)).toEqual(Array<string>(34).fill('written'));
});
