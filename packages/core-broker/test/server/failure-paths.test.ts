import { type Socket, connect } from 'node:net';
import { TransactionProducer } from '../../src/client/transaction-producer';
import { FRAME_HEADER_BYTES, FrameDecoder, FrameFlag, encodeFrame } from '../../src/remoting/frame-codec';
import { errorResponseCodec, queueRequestCodec } from '../../src/remoting/protocol-codec';
import { RemotingClient } from '../../src/remoting/remoting-client';
import { RemotingServer } from '../../src/remoting/remoting-server';
import { RequestCode } from '../../src/remoting/request-codes';
import { advance, until } from '../support/client-harness';
import { settle } from '../support/settle';
import { type TcpCluster, startTcpCluster } from './tcp-harness';

let t: TcpCluster;
const sockets: Socket[] = [];

beforeEach(async () => {
  t = await startTcpCluster({
    brokerNames: ['broker-a'],
    topics: [{ topic: 'T', queueCount: 1 }],
    server: { closeTimeoutMs: 200 },
  });
});
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await t.close();
});

function raw(): Promise<{ socket: Socket; frames: ReturnType<FrameDecoder['push']>; closed: Promise<void> }> {
  const [host, port] = t.address('broker-a').split(':');
  return new Promise((resolve, reject) => {
    const socket = connect({ host: host!, port: Number(port) });
    sockets.push(socket);
    const decoder = new FrameDecoder();
    const frames: ReturnType<FrameDecoder['push']> = [];
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('data', (chunk: Buffer) => frames.push(...decoder.push(chunk)));
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve({ socket, frames, closed }));
    socket.once('error', reject);
  });
}

const maxOffset = () => t.transport.maxOffset('broker-a', { topic: 'T', queueId: 0 });

describe('malformed input', () => {
  test('bad magic closes that connection only; others keep being served', async () => {
    const bad = await raw();
    bad.socket.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await bad.closed;
    expect(await maxOffset()).toBe(0);
  });

  test('an oversize length closes the connection before the body arrives', async () => {
    const bad = await raw();
    const fixed = encodeFrame({
      code: 10,
      opaque: 1,
      flags: 0,
      header: Buffer.alloc(0),
      body: Buffer.alloc(0),
    });
    fixed.writeUInt32LE(0xffff_fff0, 0);
    bad.socket.write(fixed);
    await bad.closed;
    expect(await maxOffset()).toBe(0);
  });

  test('a truncated frame then close: no crash, no response', async () => {
    const bad = await raw();
    const frame = encodeFrame({
      code: 30,
      opaque: 1,
      flags: 0,
      ...queueRequestCodec.encode({ topic: 'T', queueId: 0 }),
    });
    bad.socket.end(frame.subarray(0, FRAME_HEADER_BYTES + 2));
    await bad.closed;
    expect(bad.frames).toEqual([]);
    expect(await maxOffset()).toBe(0);
  });

  test('unknown code and garbage payload get error responses, and the connection stays usable', async () => {
    const c = await raw();
    c.socket.write(
      encodeFrame({ code: 4242, opaque: 7, flags: 0, header: Buffer.from([1, 2]), body: Buffer.alloc(0) }),
    );
    c.socket.write(
      encodeFrame({ code: 30, opaque: 8, flags: 0, header: Buffer.from([9, 9, 9]), body: Buffer.alloc(0) }),
    );
    c.socket.write(
      encodeFrame({ code: 30, opaque: 9, flags: 0, ...queueRequestCodec.encode({ topic: 'T', queueId: 0 }) }),
    );
    await until(() => c.frames.length === 3, 'three responses');
    const byOpaque = new Map(c.frames.map((f) => [f.opaque, f]));
    for (const opaque of [7, 8]) {
      const f = byOpaque.get(opaque)!;
      expect(f.flags & FrameFlag.ERROR).toBeTruthy();
      expect(errorResponseCodec.decode(f)).toMatchObject({ code: 'PROTOCOL_ERROR' });
    }
    expect(byOpaque.get(9)!.flags).toBe(FrameFlag.RESPONSE);
    expect(await maxOffset()).toBe(0);
  });
});

describe('client limits and recovery', () => {
  test('a request with no response times out with retriable TIMEOUT', async () => {
    const server = await RemotingServer.listen({
      host: '127.0.0.1',
      handler: () => new Promise(() => undefined),
      closeTimeoutMs: 10,
    });
    const client = new RemotingClient({ requestTimeoutMs: 50 });
    try {
      const address = `127.0.0.1:${server.address().port}`;
      await expect(
        client.request(
          address,
          RequestCode.GET_MAX_OFFSET,
          queueRequestCodec.encode({ topic: 'T', queueId: 0 }),
        ),
      ).rejects.toMatchObject({ code: 'TIMEOUT', retriable: true });
    } finally {
      await client.close();
      await server.close();
    }
  });

  test('in-flight bound: one request past maxInflightRequests fails fast with retriable BROKER_BUSY', async () => {
    const server = await RemotingServer.listen({
      host: '127.0.0.1',
      handler: () => new Promise(() => undefined),
      closeTimeoutMs: 10,
    });
    const client = new RemotingClient({ requestTimeoutMs: 5_000, maxInflightRequests: 2 });
    try {
      const address = `127.0.0.1:${server.address().port}`;
      const payload = queueRequestCodec.encode({ topic: 'T', queueId: 0 });
      const held = [1, 2].map(() =>
        client.request(address, RequestCode.GET_MAX_OFFSET, payload).catch((e: unknown) => e),
      );
      await until(() => client.inflight(address) === 2, 'two in flight');
      await expect(client.request(address, RequestCode.GET_MAX_OFFSET, payload)).rejects.toMatchObject({
        code: 'BROKER_BUSY',
        retriable: true,
      });
      await client.close();
      for (const e of await Promise.all(held))
        expect(e).toMatchObject({ code: 'BROKER_UNAVAILABLE', retriable: true });
    } finally {
      await client.close();
      await server.close();
    }
  });

  test('broker server restart: pending requests fail retriably, then the client reconnects', async () => {
    expect(await maxOffset()).toBe(0);
    const pulling = t.transport
      .pull('broker-a', {
        consumerGroup: 'G',
        topic: 'T',
        queueId: 0,
        queueOffset: 0,
        maxCount: 1,
        suspendTimeoutMs: 60_000,
      })
      .catch((e: unknown) => e);
    await settle();
    await t.servers.get('broker-a')!.remoting.close();
    // the long pull was in flight on a closed connection: retriable
    expect(await pulling).toMatchObject({ retriable: true });
    await expect(maxOffset()).rejects.toMatchObject({ code: 'BROKER_UNAVAILABLE', retriable: true });
    await t.restartServer('broker-a');
    await expect(maxOffset()).resolves.toBe(0);
  });
});

describe('server limits', () => {
  test('a client that never reads its responses: the server stops reading it, its buffer stays bounded', async () => {
    await t.stopServer('broker-a');
    const highWater = 64 * 1024;
    let handled = 0;
    const server = await RemotingServer.listen({
      host: '127.0.0.1',
      writeHighWaterMarkBytes: highWater,
      closeTimeoutMs: 50,
      maxInflightRequestsPerConnection: 64,
      handler: async () => (handled++, { header: Buffer.alloc(0), body: Buffer.alloc(64 * 1024) }),
    });
    const socket = connect({ host: '127.0.0.1', port: server.address().port });
    sockets.push(socket);
    socket.on('error', () => undefined);
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.pause(); // never read
    const request = encodeFrame({
      code: 30,
      opaque: 1,
      flags: 0,
      header: Buffer.alloc(0),
      body: Buffer.alloc(0),
    });
    let maxWritable = 0;
    const requests = Buffer.concat(Array.from({ length: 100 }, () => request));
    for (let i = 0; i < 200; i++) {
      socket.write(requests); // 20k requests = 1.3 GB of responses if nothing held back
      await settle(1);
      for (const s of server.connectionStats()) maxWritable = Math.max(maxWritable, s.writableLength);
    }
    const [stats] = server.connectionStats();
    expect(stats!.paused).toBe(true);
    expect(handled).toBeLessThan(1000); // of the 20k requests sent
    // bounded by the high-water mark plus what one read's worth of requests can answer
    expect(maxWritable).toBeLessThan(highWater + 64 * 64 * 1024);
    socket.destroy();
    await server.close();
  });

  test('maxConnections: connections past the limit are closed at once', async () => {
    const server = await RemotingServer.listen({
      host: '127.0.0.1',
      maxConnections: 1,
      handler: async () => undefined,
    });
    const open = (): Promise<Socket> =>
      new Promise((resolve) => {
        const s = connect({ host: '127.0.0.1', port: server.address().port }, () => resolve(s));
        s.on('error', () => undefined);
        sockets.push(s);
      });
    await open();
    const second = await open();
    await new Promise<void>((r) => second.once('close', () => r()));
    expect(server.connections).toHaveLength(1);
    await server.close();
  });
});

test('transaction check-back over TCP: the broker asks, the TransactionProducer answers COMMIT', async () => {
  const { clock } = t.cluster;
  const producer = new TransactionProducer({
    group: 'TPG',
    transport: t.transport,
    clock,
    checker: () => 'COMMIT',
  });
  try {
    await producer.start();
    const result = await producer.sendInTransaction({ topic: 'T', body: 'tx' }, () => 'UNKNOWN');
    expect(result).toBeDefined();
    expect(t.cluster.broker('broker-a').maxOffset({ topic: 'T', queueId: 0 })).toBe(0);
    await advance(clock, 70_000, 1000);
    await until(
      () => t.cluster.broker('broker-a').maxOffset({ topic: 'T', queueId: 0 }) === 1,
      'committed by check-back',
      2000,
    );
  } finally {
    await producer.shutdown();
  }
});

test('reset-offset and consumer-ids-changed notices reach the registered channel over TCP', async () => {
  const resets: unknown[] = [];
  const changes: string[] = [];
  t.transport.register('c1', {
    resetOffset: (n) => resets.push(n),
    consumerIdsChanged: (g) => changes.push(g),
  });
  await t.transport.heartbeat('broker-a', {
    clientId: 'c1',
    producerGroups: [],
    consumers: [{ group: 'G', messageModel: 'CLUSTERING', consumeType: 'PUSH', subscriptions: [] }],
  });
  await until(() => changes.includes('G'), 'consumer ids changed notice');
  t.cluster.broker('broker-a').resetOffsetByTime('G', 'T', 0);
  await until(() => resets.length === 1, 'reset notice');
  expect(resets[0]).toEqual({
    group: 'G',
    topic: 'T',
    brokerName: 'broker-a',
    offsets: [{ queueId: 0, offset: 0 }],
  });
  // the connection closing makes the broker drop the client, as RocketMQ's housekeeping does
  await t.transport.close();
  await until(() => t.cluster.broker('broker-a').consumerIds({ group: 'G' }).length === 0, 'client dropped');
});

test('idleTimeoutMs closes a silent connection with nothing in flight', async () => {
  const server = await RemotingServer.listen({
    host: '127.0.0.1',
    idleTimeoutMs: 50,
    handler: async () => undefined,
  });
  const socket = connect({ host: '127.0.0.1', port: server.address().port });
  sockets.push(socket);
  socket.on('error', () => undefined);
  await new Promise<void>((r) => socket.once('close', () => r()));
  await until(() => server.connections.length === 0, 'server side closed');
  await server.close();
});
