import * as net from 'node:net';
import { isRocketError } from '../../src/common/errors';
import { ApacheDriver, retryDelay } from '../../src/driver/apache/apache-driver';
import { resolveApacheOptions } from '../../src/driver/apache/apache-options';
import { ApacheRpc, statusError } from '../../src/driver/apache/apache-rpc';
import { msDuration } from '../../src/rocketmq5/codec';
import { parseAuthorization, verifySignature } from '../../src/rocketmq5/signature';
import { Code } from '../../src/rocketmq5/status';

/** The Apache driver's parts that need no cluster: options, signing, status mapping, backoff, bootstrap refusals. */

test('options: a bad endpoint, half credentials or a too short invisible duration fail with INVALID_OPTION naming the fix', () => {
  expect(() => resolveApacheOptions({ endpoints: '' })).toThrow(/endpoints must be the proxy's gRPC address/);
  expect(() => resolveApacheOptions({ endpoints: 'localhost' })).toThrow(/'localhost' is not host:port/);
  expect(() =>
    resolveApacheOptions({ endpoints: 'h:8081', credentials: { accessKey: 'ak', secretKey: '' } }),
  ).toThrow(/credentials needs accessKey and secretKey/);
  expect(() => resolveApacheOptions({ endpoints: 'h:8081', invisibleDurationMs: 5000 })).toThrow(
    /invisibleDurationMs must be an integer in \[10000/,
  );
  expect(() => resolveApacheOptions({ endpoints: 'h:8081', namespace: 'bad ns' })).toThrow(/namespace/);
  const resolved = resolveApacheOptions({ endpoints: 'a:1;b.example:2', namespace: 'prod' });
  expect(resolved.endpoints).toEqual([
    { host: 'a', port: 1 },
    { host: 'b.example', port: 2 },
  ]);
  expect(Object.isFrozen(resolved)).toBe(true);
});

test('every call is signed as RocketMQ 5 expects and carries the namespace', () => {
  const rpc = new ApacheRpc(
    resolveApacheOptions({
      endpoints: '127.0.0.1:1',
      namespace: 'prod',
      credentials: { accessKey: 'ak', secretKey: 'sk', securityToken: 'tok' },
    }),
  );
  try {
    const m = rpc.metadata('client-1');
    const header = String(m.get('authorization')[0]);
    const dateTime = String(m.get('x-mq-date-time')[0]);
    expect(dateTime).toMatch(/^\d{8}T\d{6}Z$/);
    const parsed = parseAuthorization(header)!;
    expect(parsed).toMatchObject({ accessKey: 'ak', signedHeaders: 'x-mq-date-time' });
    expect(verifySignature('sk', dateTime, parsed.signatureHex)).toBe(true);
    expect(verifySignature('wrong', dateTime, parsed.signatureHex)).toBe(false);
    expect(m.get('x-mq-namespace')).toEqual(['prod']);
    expect(m.get('x-mq-session-token')).toEqual(['tok']);
    expect(m.get('x-mq-client-id')).toEqual(['client-1']);
    expect(rpc.resource('Orders')).toEqual({ resourceNamespace: 'prod', name: 'Orders' });
    expect(rpc.withoutNamespace('prod%Orders')).toBe('Orders');
  } finally {
    rpc.close();
  }
});

test('proxy statuses become typed RocketErrors: server trouble retriable, client mistakes not', () => {
  const busy = statusError('SendMessage', { code: Code.TOO_MANY_REQUESTS, message: 'flow control' });
  expect([busy.code, busy.retriable]).toEqual(['BROKER_BUSY', true]);
  const internal = statusError('ReceiveMessage', { code: Code.INTERNAL_SERVER_ERROR, message: 'npe' });
  expect([internal.code, internal.retriable]).toEqual(['BROKER_UNAVAILABLE', true]);
  const typed = statusError('SendMessage', { code: Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE, message: 'x' });
  expect([typed.code, typed.retriable]).toEqual(['INVALID_ARGUMENT', false]);
  expect(typed.message).toMatch(/FIFO messages need a FIFO topic/);
  expect(statusError('X', { code: Code.FORBIDDEN, message: '' }).code).toBe('ACCESS_DENIED');
  expect(statusError('X', { code: Code.NOT_IMPLEMENTED, message: '' }).code).toBe('UNSUPPORTED');
});

test('redelivery backoff follows the Settings policy: customized steps, or exponential up to its max', () => {
  const customized = { maxAttempts: 5, customizedBackoff: { next: [msDuration(1000), msDuration(5000)] } };
  expect([1, 2, 3].map((attempt) => retryDelay(customized, attempt, 0))).toEqual([1000, 5000, 5000]);
  const exponential = {
    maxAttempts: 5,
    exponentialBackoff: { initial: msDuration(100), max: msDuration(500), multiplier: 2 },
  };
  expect([1, 2, 3, 4].map((attempt) => retryDelay(exponential, attempt, 0))).toEqual([100, 200, 400, 500]);
  expect(retryDelay(undefined, 2, 1000)).toBe(2000);
});

describe('bootstrap refusals', () => {
  let driver: ApacheDriver;
  let silent: net.Server;
  let port: number;
  const sockets = new Set<net.Socket>();
  beforeAll(async () => {
    // a port that accepts TCP but never speaks HTTP/2: nothing answers there
    silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    port = (silent.address() as net.AddressInfo).port;
    driver = new ApacheDriver({
      endpoints: `127.0.0.1:${port}`,
      requestTimeoutMs: 500,
      settingsTimeoutMs: 500,
    });
  });
  afterAll(async () => {
    await driver.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  test('broadcasting fails with UNSUPPORTED before anything is sent', async () => {
    const failure = await driver
      .subscribe({ group: 'G', topic: 'T', messageModel: 'BROADCASTING', handler: () => undefined })
      .catch((error: unknown) => error);
    expect(isRocketError(failure, 'UNSUPPORTED')).toBe(true);
    expect((failure as Error).message).toMatch(/no broadcasting/);
  });

  test('a filter that does not parse fails with INVALID_FILTER at subscribe', async () => {
    await expect(
      driver.subscribe({ group: 'G', topic: 'T', filter: { sql: 'a = = 1' }, handler: () => undefined }),
    ).rejects.toMatchObject({ code: 'INVALID_FILTER' });
  });

  test('a proxy that does not answer fails the producer start with a retriable error', async () => {
    const failure = await driver
      .createProducer({ group: 'P', topics: ['T'] })
      .catch((error: unknown) => error);
    expect(isRocketError(failure)).toBe(true);
    expect((failure as { retriable: boolean }).retriable).toBe(true);
  });
});
