import fc from 'fast-check';
import { isRocketError } from '../../src/common/errors';
import { resolvePushOptions } from '../../src/push/push-options';
import {
  MAX_POSITION_BROKERS,
  decodePosition,
  encodePosition,
  topicHash,
} from '../../src/push/push-position';
import type { Position } from '../../src/push/push-position';
import {
  PUSH_ERROR_CODES,
  PushCloseCode,
  isReconnectCloseCode,
  parseClientFrame,
} from '../../src/push/push-protocol';
import { PushClient, isReconnectCloseCode as clientIsReconnect } from '../../src/push/client/push-client.mjs';
import { InProcessTransport } from '../../src/client/in-process-transport';

describe('position codec', () => {
  test('golden text', () => {
    const position: Position = {
      topicHash: topicHash('Orders'),
      brokers: [
        { brokerName: 'broker-a', epoch: '0123456789ABCDEF', offsets: [0, 17, 4] },
        { brokerName: 'b;:,%', epoch: '', offsets: [9] },
      ],
    };
    const text = encodePosition(position);
    expect(text).toBe(`1;${topicHash('Orders')};broker-a:0123456789ABCDEF:0,17,4;b%3B%3A%2C%25::9`);
    expect(decodePosition(text)).toEqual(position);
    expect(topicHash('Orders')).toMatch(/^[0-9a-f]{8}$/);
    expect(topicHash('Orders')).not.toBe(topicHash('orders'));
  });

  test('round trip (property)', () => {
    const broker = fc.record({
      brokerName: fc.string({ minLength: 1, maxLength: 20 }),
      epoch: fc.oneof(fc.constant(''), fc.stringMatching(/^[0-9A-F]{16}$/)),
      offsets: fc.array(fc.nat({ max: Number.MAX_SAFE_INTEGER }), { minLength: 1, maxLength: 16 }),
    });
    fc.assert(
      fc.property(
        fc.string(),
        fc.uniqueArray(broker, { selector: (b) => b.brokerName, maxLength: 5 }),
        (topic, brokers) => {
          const position = { topicHash: topicHash(topic), brokers };
          expect(decodePosition(encodePosition(position))).toEqual(position);
        },
      ),
    );
  });

  test.each([
    ['', /version/],
    ['2;00000000', /version/],
    ['1;xyz', /topic hash/],
    ['1;00000000;a:b', /name:epoch:offsets/],
    ['1;00000000;a::1,x', /bad offset/],
    ['1;00000000;a::99999999999999999', /bad offset/],
    ['1;00000000;a:0123:1', /bad epoch/],
    ['1;00000000;a::1;a::2', /repeated/],
    ['1;00000000;%E0%A4%A::1', /URI-encoded/],
    [`1;00000000${';b::0'.repeat(MAX_POSITION_BROKERS + 1)}`, /more than/],
  ])('malformed position #%# is INVALID_ARGUMENT', (text, message) => {
    let error: unknown;
    try {
      decodePosition(text);
    } catch (e) {
      error = e;
    }
    expect(isRocketError(error, 'INVALID_ARGUMENT')).toBe(true);
    expect((error as Error).message).toMatch(message);
  });

  test('arbitrary text never throws anything but INVALID_ARGUMENT (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        try {
          decodePosition(`1;00000000;${text}`);
        } catch (error) {
          expect(isRocketError(error, 'INVALID_ARGUMENT')).toBe(true);
        }
      }),
    );
  });
});

describe('client frames', () => {
  test('subscribe with defaults, tag, sql and every from', () => {
    expect(parseClientFrame('{"type":"subscribe","id":"a","topic":"T"}')).toEqual({
      type: 'subscribe',
      id: 'a',
      topic: 'T',
      filter: { kind: 'TAG', expression: '*' },
      from: 'latest',
    });
    expect(
      parseClientFrame('{"type":"subscribe","id":"a","topic":"T","sql":"x > 1","from":"earliest"}'),
    ).toMatchObject({
      filter: { kind: 'SQL92', expression: 'x > 1' },
      from: 'earliest',
    });
    expect(
      parseClientFrame('{"type":"subscribe","id":"a","topic":"T","from":{"timestampMs":5}}'),
    ).toMatchObject({
      from: { timestampMs: 5 },
    });
    expect(
      parseClientFrame('{"type":"subscribe","id":"a","topic":"T","from":{"position":"1;x"}}'),
    ).toMatchObject({
      from: { position: '1;x' },
    });
    expect(parseClientFrame('{"type":"pong"}')).toEqual({ type: 'pong' });
    expect(parseClientFrame('{"type":"unsubscribe","id":"a"}')).toEqual({ type: 'unsubscribe', id: 'a' });
  });

  test.each([
    ['[]', 'bad_frame'],
    ['"x"', 'bad_frame'],
    ['{', 'bad_frame'],
    ['{"type":1}', 'bad_frame'],
    ['{"type":"subscribe","topic":"T"}', 'bad_frame'],
    [`{"type":"subscribe","id":"${'x'.repeat(65)}","topic":"T"}`, 'bad_frame'],
    ['{"type":"subscribe","id":"a"}', 'bad_frame'],
    ['{"type":"subscribe","id":"a","topic":"T","tag":"x","sql":"y"}', 'bad_request'],
    ['{"type":"subscribe","id":"a","topic":"T","tag":5}', 'bad_request'],
    ['{"type":"subscribe","id":"a","topic":"T","from":{"timestampMs":-1}}', 'bad_request'],
    ['{"type":"subscribe","id":"a","topic":"T","from":{"position":""}}', 'bad_request'],
    ['{"type":"subscribe","id":"a","topic":"T","from":{"position":"x","extra":1}}', 'bad_request'],
    ['{"type":"unsubscribe"}', 'bad_frame'],
  ])('%s is answered with %s', (text, code) => {
    const parsed = parseClientFrame(text);
    expect('problem' in parsed && parsed.problem.code).toBe(code);
  });

  test('arbitrary text is a frame or a problem, never a throw (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
        const parsed = parseClientFrame(text);
        expect(typeof parsed).toBe('object');
      }),
    );
  });
});

describe('close codes and error codes', () => {
  test('4000–4499 reconnect, 4500–4999 terminal; the browser client agrees with the server table', () => {
    for (const code of Object.values(PushCloseCode)) {
      expect(isReconnectCloseCode(code)).toBe(code < 4500);
      expect(clientIsReconnect(code)).toBe(isReconnectCloseCode(code));
    }
    for (const code of [1000, 1001, 1006, 1011, 1012]) expect(clientIsReconnect(code)).toBe(true);
    for (const code of [1002, 1003, 1007, 1008, 1009, 1010]) expect(clientIsReconnect(code)).toBe(false);
  });

  test('the client treats as terminal exactly the error codes the server table marks terminal', async () => {
    // the client's list is private; probe it through an error frame on a fake socket
    let checked = 0;
    for (const [code, { terminal }] of Object.entries(PUSH_ERROR_CODES)) {
      const sockets: FakeSocket[] = [];
      const client = new PushClient('ws://x', { WebSocket: fakeSocket(sockets) as never });
      const errors: Array<{ terminal: boolean }> = [];
      client.onError((e: { terminal: boolean }) => errors.push(e));
      client.subscribe('T', {}, () => undefined);
      await new Promise<void>((resolve) => setImmediate(resolve));
      const ws = sockets[0]!;
      ws.readyState = 1;
      ws.onmessage!({ data: JSON.stringify({ type: 'welcome', pingIntervalMs: 1000, pongTimeoutMs: 1000 }) });
      expect(JSON.parse(ws.sent[0]!)).toMatchObject({
        type: 'subscribe',
        id: 's1',
        topic: 'T',
        from: 'latest',
      });
      ws.onmessage!({ data: JSON.stringify({ type: 'error', subscription: 's1', code, reason: 'r' }) });
      expect({ code, terminal: errors[0]?.terminal }).toEqual({ code, terminal });
      client.close();
      checked++;
    }
    expect(checked).toBe(Object.keys(PUSH_ERROR_CODES).length);
  });
});

interface FakeSocket {
  readyState: number;
  protocol: string;
  sent: string[];
  send(data: string): void;
  close(): void;
  onopen: ((e: unknown) => void) | null;
  onmessage: ((e: { data: unknown }) => void) | null;
  onclose: ((e: { code: number; reason: string }) => void) | null;
  onerror: ((e: unknown) => void) | null;
}

function fakeSocket(sockets: FakeSocket[]): new (url: string, protocols: string[]) => FakeSocket {
  return class {
    readyState = 0;
    protocol = 'rocketnest.push.v1';
    sent: string[] = [];
    onopen = null;
    onmessage = null;
    onclose = null;
    onerror = null;
    constructor() {
      sockets.push(this as unknown as FakeSocket);
    }
    send(data: string): void {
      this.sent.push(data);
    }
    close(): void {
      this.readyState = 3;
    }
  } as unknown as new (url: string, protocols: string[]) => FakeSocket;
}

describe('options', () => {
  const transport = new InProcessTransport();
  test('authorize is required; limits are range-checked with INVALID_OPTION naming the option', () => {
    expect(() => resolvePushOptions({ transport } as never)).toThrow(/authorize is required/);
    expect(() => resolvePushOptions({ transport, authorize: () => true, maxBufferedBytes: 10 })).toThrow(
      /maxBufferedBytes must be an integer in \[1024/,
    );
    expect(() => resolvePushOptions({ transport, authorize: () => true, path: 'push' })).toThrow(/path/);
    expect(() => resolvePushOptions({ transport, authorize: () => true, path: '/push/' })).toThrow(/path/);
    expect(() =>
      resolvePushOptions({ transport, authorize: () => true, consumerGroup: 'bad group' }),
    ).toThrow(/consumerGroup/);
    const resolved = resolvePushOptions({ transport, authorize: () => true });
    expect(resolved).toMatchObject({
      path: '/push',
      maxSubscriptionsPerConnection: 64,
      maxBufferedBytes: 1024 * 1024,
    });
    expect(Object.isFrozen(resolved)).toBe(true);
  });
});
