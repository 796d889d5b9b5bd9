import { type Server, createServer } from 'node:net';
import { Producer } from '../../src/client/producer';
import { type MessageExt, PushConsumer } from '../../src/client/push-consumer';
import { TcpTransport, type TcpTransportOptions } from '../../src/client/tcp-transport';
import { type RocketError, isRocketError } from '../../src/common/errors';
import { ManualClock } from '../support/manual-clock';
import { RemotingClient } from '../../src/remoting/remoting-client';
import { RemotingServer } from '../../src/remoting/remoting-server';
import { RequestCode } from '../../src/remoting/request-codes';
import { text, until } from '../support/client-harness';
import { type TestCert, generateTestCerts } from '../support/test-certs';
import { type TcpCluster, startTcpCluster } from './tcp-harness';

let certs: Record<string, TestCert>;
let cleanupCerts: () => void;
beforeAll(() => {
  ({ certs, cleanup: cleanupCerts } = generateTestCerts(['server', 'other', 'client']));
});
afterAll(() => cleanupCerts());

let t: TcpCluster;
const serverErrors: unknown[] = [];
const extra: TcpTransport[] = [];
beforeEach(async () => {
  serverErrors.length = 0;
  t = await startTcpCluster({
    topics: [{ topic: 'Orders', queueCount: 2 }],
    server: {
      tls: { certFile: certs.server!.certFile, keyFile: certs.server!.keyFile },
      onError: (error) => serverErrors.push(error),
    },
    transport: { tls: { caFile: certs.server!.certFile } },
  });
});
afterEach(async () => {
  for (const x of extra.splice(0)) await x.close();
  await t.close();
});

function transport(options: Partial<TcpTransportOptions>, address = t.address('broker-a')): TcpTransport {
  const x = new TcpTransport({ reconnectBackoffMinMs: 0, ...options, brokers: { 'broker-a': address } });
  extra.push(x);
  return x;
}

async function failure(promise: Promise<unknown>): Promise<RocketError> {
  try {
    await promise;
  } catch (error) {
    if (isRocketError(error)) return error;
    throw error;
  }
  throw new Error('expected the request to fail');
}

describe('TLS', () => {
  test('round trip: a producer sends and a push consumer receives over TLS, verified against the generated CA', async () => {
    const { clock } = t.cluster;
    const producer = new Producer({ group: 'PG', transport: t.transport, clock });
    const seen: MessageExt[] = [];
    const consumer = new PushConsumer({
      group: 'CG',
      transport: t.transport,
      clock,
      consumeFromWhere: 'FIRST_OFFSET',
    });
    try {
      await producer.start();
      consumer.subscribe('Orders', '*');
      consumer.registerMessageListener((messages) => {
        seen.push(...messages);
        return 'CONSUME_SUCCESS';
      });
      await consumer.start();
      for (let i = 0; i < 4; i++) await producer.send({ topic: 'Orders', body: `secure ${i}` });
      await until(() => new Set(seen.map(text)).size === 4, 'all 4 consumed', 2000);
      expect([...new Set(seen.map(text))].sort()).toEqual(['secure 0', 'secure 1', 'secure 2', 'secure 3']);
      expect(serverErrors).toEqual([]);
    } finally {
      await consumer.shutdown();
      await producer.shutdown();
    }
  });

  test('a server certificate from another CA: retriable BROKER_UNAVAILABLE carrying the cause', async () => {
    const wrongCa = transport({ tls: { caFile: certs.other!.certFile } });
    const error = await failure(wrongCa.maxOffset('broker-a', { topic: 'Orders', queueId: 0 }));
    expect(error.code).toBe('BROKER_UNAVAILABLE');
    expect(error.retriable).toBe(true);
    expect(error.message).toMatch(/cannot connect: .*(self[- ]signed|certificate)/i);
    expect((error.cause as { code?: string }).code).toMatch(/SELF_SIGNED|CERT/);
    // the system CAs do not know a self-signed certificate either
    expect(
      (await failure(transport({ tls: true }).maxOffset('broker-a', { topic: 'Orders', queueId: 0 }))).code,
    ).toBe('BROKER_UNAVAILABLE');
    // the server is still serving a good client
    expect(await t.transport.maxOffset('broker-a', { topic: 'Orders', queueId: 0 })).toBe(0);
  });

  test('a plain client against the TLS server fails cleanly; the server keeps serving TLS clients', async () => {
    const plain = transport({ requestTimeoutMs: 2000 });
    const error = await failure(plain.maxOffset('broker-a', { topic: 'Orders', queueId: 0 }));
    expect(error.code).toBe('BROKER_UNAVAILABLE');
    expect(error.retriable).toBe(true);
    await until(() => serverErrors.length > 0, 'the failed handshake reported', 2000);
    expect(await t.transport.maxOffset('broker-a', { topic: 'Orders', queueId: 0 })).toBe(0);
    expect(t.servers.get('broker-a')!.remoting.connections.length).toBe(1);
  });

  test('a TLS client against a plain server: BROKER_UNAVAILABLE, and the plain server keeps serving', async () => {
    const plain = await startTcpCluster({ topics: [{ topic: 'Orders', queueCount: 1 }] });
    try {
      const tlsClient = transport({ tls: { caFile: certs.server!.certFile } }, plain.address('broker-a'));
      const error = await failure(tlsClient.maxOffset('broker-a', { topic: 'Orders', queueId: 0 }));
      expect(error.code).toBe('BROKER_UNAVAILABLE');
      expect(error.retriable).toBe(true);
      expect(await plain.transport.maxOffset('broker-a', { topic: 'Orders', queueId: 0 })).toBe(0);
    } finally {
      await plain.close();
    }
  });

  test('a peer that never answers the handshake fails at the connect timeout, not later', async () => {
    // accepts TCP, reads and says nothing: the handshake never completes
    const silent: Server = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.resume();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    // the connect timeout runs on the client's clock: moved by hand, the test sees it fire exactly
    const clock = new ManualClock(Date.now());
    const client = new RemotingClient({
      tls: { caFile: certs.server!.certFile },
      connectTimeoutMs: 300,
      requestTimeoutMs: 10_000,
      clock,
    });
    try {
      let settled = false;
      const pending = failure(
        client.request(`127.0.0.1:${port}`, RequestCode.GET_MAX_OFFSET, {
          header: Buffer.alloc(0),
          body: Buffer.alloc(0),
        }),
      ).finally(() => (settled = true));
      await new Promise((resolve) => setTimeout(resolve, 50));
      clock.advance(299);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(settled).toBe(false);
      clock.advance(1);
      const error = await pending;
      expect(error.code).toBe('BROKER_UNAVAILABLE');
      expect(error.message).toMatch(/connect timed out after 300 ms/);
    } finally {
      await client.close();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  test('mutual TLS: a server that requests client certificates refuses clients without one', async () => {
    const server = await RemotingServer.listen({
      host: '127.0.0.1',
      port: 0,
      handler: async () => ({ header: Buffer.from('ok'), body: Buffer.alloc(0) }),
      tls: {
        certFile: certs.server!.certFile,
        keyFile: certs.server!.keyFile,
        caFile: certs.client!.certFile,
        requestClientCert: true,
      },
    });
    const address = `127.0.0.1:${server.address().port}`;
    const payload = { header: Buffer.alloc(0), body: Buffer.alloc(0) };
    const withCert = new RemotingClient({ tls: { caFile: certs.server!.certFile, ...certs.client! } });
    const without = new RemotingClient({ tls: { caFile: certs.server!.certFile } });
    try {
      expect((await withCert.request(address, RequestCode.GET_MAX_OFFSET, payload)).header.toString()).toBe(
        'ok',
      );
      const refused = await failure(without.request(address, RequestCode.GET_MAX_OFFSET, payload));
      expect(refused.code).toBe('BROKER_UNAVAILABLE');
    } finally {
      await withCert.close();
      await without.close();
      await server.close();
    }
  });

  test('unreadable certificate files are INVALID_OPTION naming the option and file', async () => {
    await expect(
      RemotingServer.listen({
        handler: async () => undefined,
        port: 0,
        tls: { certFile: '/nonexistent/cert.pem', keyFile: certs.server!.keyFile },
      }),
    ).rejects.toThrow(/remoting server option tls\.certFile: cannot read "\/nonexistent\/cert\.pem"/);
    expect(() => new RemotingClient({ tls: { caFile: '/nonexistent/ca.pem' } })).toThrow(
      /remoting client option tls\.caFile: cannot read "\/nonexistent\/ca\.pem"/,
    );
    expect(() => new RemotingClient({ tls: { certFile: certs.client!.certFile } })).toThrow(/go together/);
  });
});
