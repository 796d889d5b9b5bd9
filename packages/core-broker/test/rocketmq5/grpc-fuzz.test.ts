import * as http2 from 'node:http2';
import { type Socket, connect } from 'node:net';
import fc from 'fast-check';
import { Broker } from '../../src/broker/broker';
import {
  ClientType,
  FilterType,
  METHODS,
  MessageType,
  type MethodName,
  SERVICE,
} from '../../src/rocketmq5/codec';
import { Code } from '../../src/rocketmq5/status';
import { GrpcServer } from '../../src/server/grpc-server';
import { MemoryStore } from '../../src/store/memory-store';
import { RawClient } from './grpc-raw-client';

/**
 * Fuzz of the RocketMQ 5 gRPC port, as test/server/protocol-fuzz.test.ts fuzzes the TCP port: a
 * real GrpcServer on loopback over a MemoryStore-backed Broker, fed
 *
 * - random bytes where HTTP/2 is expected, and random HTTP/2 frames after a valid preface (bad
 *   types, flags, stream ids, lengths, frames over the 16 KiB frame size);
 * - gRPC calls with random method paths, random gRPC framing (compressed flag without an encoding,
 *   lengths that lie), random protobuf bytes to every method, mutations of valid requests, and
 *   messages declaring more than the inbound bound.
 *
 * Every case must end with a proper answer: a connection closed by the server (malformed HTTP/2), or
 * a gRPC status (UNIMPLEMENTED for unknown paths, RESOURCE_EXHAUSTED over the bound, a RocketMQ
 * `Status` with a code of the table in a decoded response…), never a hang (each case has a
 * deadline) and never a crash (the server runs in this process: an uncaught exception fails the
 * test). Between batches a well-behaved client still sends and receives. Bounded: a fixed number of
 * runs per property.
 */

const TOPIC = 'FuzzT';
const CASE_DEADLINE_MS = 5_000;
const RUNS = 60;
const KNOWN_CODES = new Set<number>(Object.values(Code));
/** gRPC statuses the server may answer a bad call with. */
const BAD_CALL_STATUSES = new Set([
  0, // OK: the RocketMQ status inside says what was wrong
  3, // INVALID_ARGUMENT (Telemetry)
  8, // RESOURCE_EXHAUSTED (over the inbound bound)
  12, // UNIMPLEMENTED (unknown path, or a compressed message without an encoding)
  13, // INTERNAL (grpc-js: a frame that does not parse as a gRPC message)
  16, // UNAUTHENTICATED
]);

let store: MemoryStore;
let broker: Broker;
let server: GrpcServer;
let good: RawClient;
let ids = 0;
const tally = { rawClosed: 0, framesClosed: 0, calls: 0, rocketStatuses: new Map<number, number>() };

beforeAll(async () => {
  store = await MemoryStore.create({ maxBytes: 64 * 1024 * 1024, retentionIntervalMs: 0 });
  broker = await Broker.start({ store, brokerName: 'broker-a', maxSuspendMs: 25 });
  broker.createTopic({ topic: TOPIC, queueCount: 2 });
  broker.createTopic({ topic: 'FuzzF', queueCount: 1, fifo: true });
  // a short idle bound: what ends connections whose HTTP/2 the fuzz broke (the HTTP/2 layer sends
  // GOAWAY, then stops reading and would keep the socket), within a case's deadline
  server = await GrpcServer.start({ broker, port: 0, maxConnectionIdleMs: 1_000 });
  good = new RawClient(`127.0.0.1:${server.port}`, 'good-client@1');
});

afterAll(async () => {
  good.close();
  await broker.close();
  await server.close();
  await store.close();
  console.log(
    `gRPC fuzz: ${JSON.stringify({ ...tally, rocketStatuses: Object.fromEntries(tally.rocketStatuses) })}`,
  );
});

/** The well-behaved client still sends and receives after each batch. */
async function goodClientWorks(): Promise<void> {
  const messageId = `01FF${String(++ids).padStart(30, '0')}`;
  const sent = await good.unary('SendMessage', {
    messages: [
      {
        topic: { name: TOPIC },
        userProperties: {},
        systemProperties: { messageId, messageType: MessageType.NORMAL, tag: 'good' },
        body: Buffer.from('good'),
      },
    ],
  });
  expect(sent.status.code).toBe(Code.OK);
  const frames = await good.receive({
    group: { name: 'GoodGroup' },
    messageQueue: { topic: { name: TOPIC }, id: -1, permission: 4, broker: null, acceptMessageTypes: [] },
    filterExpression: { type: FilterType.TAG, expression: 'good' },
    batchSize: 32,
    invisibleDuration: { seconds: 30 },
    autoRenew: false,
    longPollingTimeout: { seconds: 1 },
  });
  const got = frames.flatMap((f) => (f.message ? [f.message] : []));
  expect(got.map((m) => m.systemProperties?.messageId)).toContain(messageId);
  for (const m of got) {
    const ack = await good.unary('AckMessage', {
      group: { name: 'GoodGroup' },
      topic: { name: TOPIC },
      entries: [
        { messageId: m.systemProperties!.messageId, receiptHandle: m.systemProperties!.receiptHandle! },
      ],
    });
    expect(ack.status.code).toBe(Code.OK);
  }
}

/** Writes `bytes` on a raw socket; resolves with whether the server closed it within the deadline. */
function rawExchange(bytes: Buffer, endAfter: boolean): Promise<'closed' | 'open'> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(server.port, '127.0.0.1');
    let settled = false;
    const done = (how: 'closed' | 'open'): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(how);
    };
    const timer = setTimeout(() => done('open'), CASE_DEADLINE_MS);
    socket.on('error', () => undefined); // a reset is a close
    socket.on('close', () => done('closed'));
    socket.on('data', () => undefined);
    socket.on('connect', () => {
      socket.write(bytes);
      if (endAfter) socket.end();
    });
    socket.on('timeout', () => reject(new Error('socket timeout')));
  });
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const frame = (
  type: number,
  flags: number,
  stream: number,
  payload: Buffer,
  length = payload.length,
): Buffer => {
  const header = Buffer.alloc(9);
  header.writeUIntBE(length & 0xffffff, 0, 3);
  header.writeUInt8(type, 3);
  header.writeUInt8(flags, 4);
  header.writeUInt32BE(stream >>> 0, 5);
  return Buffer.concat([header, payload]);
};
const EMPTY_SETTINGS = frame(4, 0, 0, Buffer.alloc(0));

test('random bytes where HTTP/2 is expected: the server closes the connection', async () => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 512 }), async (bytes) => {
      const b = Buffer.from(bytes);
      fc.pre(!PREFACE.subarray(0, b.length).equals(b.subarray(0, PREFACE.length)));
      expect(await rawExchange(b, false)).toBe('closed');
      tally.rawClosed++;
    }),
    { numRuns: RUNS },
  );
  await goodClientWorks();
});

test('random HTTP/2 frames after the preface: never a hang, the connection ends within the idle bound', async () => {
  const anyFrame = fc
    .record({
      type: fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 10, max: 255 })),
      flags: fc.integer({ min: 0, max: 255 }),
      stream: fc.oneof(fc.constantFrom(0, 1, 3, 2), fc.integer({ min: 0, max: 2 ** 31 - 1 })),
      payload: fc.uint8Array({ maxLength: 64 }),
      lie: fc.option(fc.integer({ min: 0, max: 0xffffff }), { freq: 4 }),
    })
    .map(({ type, flags, stream, payload, lie }) =>
      frame(type, flags, stream, Buffer.from(payload), lie ?? payload.length),
    );
  await fc.assert(
    fc.asyncProperty(fc.array(anyFrame, { minLength: 1, maxLength: 6 }), async (frames) => {
      // the client ends its side: whatever the frames did, the server lets the connection go
      expect(await rawExchange(Buffer.concat([PREFACE, EMPTY_SETTINGS, ...frames]), true)).toBe('closed');
      tally.framesClosed++;
    }),
    // a case that broke HTTP/2 waits out the 1 s idle bound
    { numRuns: RUNS / 2 },
  );
  // a frame over the 16 KiB frame size the server advertises: the server ends the connection itself
  const oversized = frame(0, 0, 1, Buffer.alloc(20_000));
  expect(await rawExchange(Buffer.concat([PREFACE, EMPTY_SETTINGS, oversized]), false)).toBe('closed');
  await goodClientWorks();
}, 120_000);

/** One HTTP/2 POST as a gRPC client would make it; resolves with the grpc-status and the response body. */
function grpcCall(
  session: http2.ClientHttp2Session,
  path: string,
  body: Buffer,
): Promise<{ grpcStatus: number | undefined; data: Buffer; reset: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let grpcStatus: number | undefined;
    const stream = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      'x-mq-client-id': 'fuzz-client@1',
    });
    const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), CASE_DEADLINE_MS);
    stream.on('response', (headers) => {
      if (headers['grpc-status'] !== undefined) grpcStatus = Number(headers['grpc-status']);
    });
    stream.on('trailers', (trailers) => {
      if (trailers['grpc-status'] !== undefined) grpcStatus = Number(trailers['grpc-status']);
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', () => undefined);
    stream.on('close', () => {
      clearTimeout(timer);
      resolve({ grpcStatus, data: Buffer.concat(chunks), reset: stream.rstCode !== 0 });
    });
    stream.end(body);
  });
}

/** A gRPC length-prefixed message. */
const grpcFrame = (payload: Buffer, compressed = 0, length = payload.length): Buffer => {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt8(compressed, 0);
  prefix.writeUInt32BE(length >>> 0, 1);
  return Buffer.concat([prefix, payload]);
};

const UNARY = (Object.keys(METHODS) as MethodName[]).filter((m) => METHODS[m].kind === 'unary');

/** The RocketMQ status code inside a decoded unary response, if the body holds one. */
function rocketStatus(method: MethodName, data: Buffer): number | undefined {
  if (data.length < 5) return undefined;
  const length = data.readUInt32BE(1);
  const decoded = METHODS[method].response.decode(data.subarray(5, 5 + length)) as {
    status?: { code: number };
  };
  return decoded.status?.code;
}

describe('gRPC calls', () => {
  let session: http2.ClientHttp2Session;
  beforeAll(async () => {
    session = http2.connect(`http://127.0.0.1:${server.port}`);
    await new Promise<void>((resolve, reject) => {
      session.once('connect', () => resolve());
      session.once('error', reject);
    });
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => session.close(() => resolve()));
  });

  test('random method paths answer UNIMPLEMENTED', async () => {
    const path = fc.oneof(
      fc.string({ maxLength: 40 }).map((s) => `/${SERVICE}/${s.replace(/[^\x21-\x7e]/g, 'x')}`),
      fc.string({ maxLength: 40 }).map((s) => `/${s.replace(/[^\x21-\x7e]/g, 'x')}`),
    );
    await fc.assert(
      fc.asyncProperty(path, fc.uint8Array({ maxLength: 64 }), async (p, body) => {
        const method = p.slice(SERVICE.length + 2);
        fc.pre(!(p.startsWith(`/${SERVICE}/`) && method in METHODS));
        const { grpcStatus } = await grpcCall(session, p, grpcFrame(Buffer.from(body)));
        expect(grpcStatus).toBe(12);
        tally.calls++;
      }),
      { numRuns: RUNS },
    );
    await goodClientWorks();
  });

  test('random protobuf, random gRPC framing and mutated requests to every unary method: a proper status', async () => {
    const valid: Record<string, Buffer> = {
      SendMessage: Buffer.from(
        METHODS.SendMessage.request.encode({
          messages: [
            {
              topic: { name: TOPIC },
              userProperties: { a: 'b' },
              systemProperties: {
                messageId: '01AA000000000000000000000000000001',
                messageType: MessageType.NORMAL,
              },
              body: Buffer.from('fuzz'),
            },
          ],
        }),
      ),
      QueryRoute: Buffer.from(
        METHODS.QueryRoute.request.encode({
          topic: { name: TOPIC },
          endpoints: { scheme: 1, addresses: [{ host: '127.0.0.1', port: 1 }] },
        }),
      ),
      Heartbeat: Buffer.from(METHODS.Heartbeat.request.encode({ clientType: ClientType.PRODUCER })),
    };
    const body = fc.oneof(
      // random protobuf bytes
      fc.uint8Array({ maxLength: 200 }).map((b) => grpcFrame(Buffer.from(b))),
      // a valid request with bytes flipped or cut
      fc
        .record({
          base: fc.constantFrom(...Object.values(valid)),
          flips: fc.array(fc.record({ at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }), { maxLength: 4 }),
          cut: fc.option(fc.nat()),
        })
        .map(({ base, flips, cut }) => {
          const b = Buffer.from(base);
          for (const { at, bit } of flips) if (b.length > 0) b[at % b.length]! ^= 1 << bit;
          return grpcFrame(cut === null ? b : b.subarray(0, cut % (b.length + 1)));
        }),
      // gRPC framing that lies: compressed without an encoding, a length longer or shorter than sent
      fc
        .record({
          payload: fc.uint8Array({ maxLength: 32 }),
          compressed: fc.integer({ min: 0, max: 255 }),
          length: fc.integer({ min: 0, max: 64 }),
        })
        .map(({ payload, compressed, length }) => grpcFrame(Buffer.from(payload), compressed, length)),
      // a few bytes, not even a gRPC prefix
      fc.uint8Array({ maxLength: 4 }).map((b) => Buffer.from(b)),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...UNARY), body, async (method, bytes) => {
        const { grpcStatus, data } = await grpcCall(session, METHODS[method].path, bytes);
        expect(grpcStatus).toBeDefined();
        expect(BAD_CALL_STATUSES.has(grpcStatus!)).toBe(true);
        if (grpcStatus === 0) {
          const code = rocketStatus(method, data);
          expect(code).toBeDefined();
          expect(KNOWN_CODES.has(code!)).toBe(true);
          tally.rocketStatuses.set(code!, (tally.rocketStatuses.get(code!) ?? 0) + 1);
        }
        tally.calls++;
      }),
      { numRuns: RUNS * 3 },
    );
    await goodClientWorks();
  });

  test('a message declaring more than the inbound bound is refused RESOURCE_EXHAUSTED', async () => {
    for (const method of ['SendMessage', 'QueryRoute'] as const) {
      const { grpcStatus } = await grpcCall(
        session,
        METHODS[method].path,
        grpcFrame(Buffer.alloc(64 * 1024), 0, 64 * 1024 * 1024),
      );
      expect(grpcStatus).toBe(8);
    }
    await goodClientWorks();
  });
});
