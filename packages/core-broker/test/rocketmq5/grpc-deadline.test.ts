import { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import { CLAMPED_GRPC_TIMEOUT, prepareCallTimeouts } from '../../src/server/grpc-deadline';

// The header rewrite alone, on a stand-in for grpc-js's server (its private `http2Servers` map).
// That grpc-js still reads the rewritten headers object is checked against the real server in
// grpc-bad-input.test.ts (the Java client's 60 × 365-day Telemetry timeout, and a receive that
// ends before its deadline).

const UNARY = '/apache.rocketmq.v2.MessagingService/SendMessage';
const STREAMING = '/apache.rocketmq.v2.MessagingService/ReceiveMessage';

function headersSeenByGrpc(headers: Record<string, unknown>): Record<string, unknown> {
  const http2Server = new EventEmitter();
  let seen: Record<string, unknown> | undefined;
  http2Server.on('stream', (_stream: unknown, h: Record<string, unknown>) => (seen = { ...h })); // grpc-js's listener
  prepareCallTimeouts(
    { http2Servers: new Map([[http2Server, {}]]) } as unknown as grpc.Server,
    new Set([UNARY]),
  );
  http2Server.emit('stream', {}, headers);
  return seen!;
}

test('a unary call loses its grpc-timeout (no per-call deadline timer); other headers stay', () => {
  const seen = headersSeenByGrpc({ ':path': UNARY, 'grpc-timeout': '2999m', 'x-mq-client-id': 'c' });
  expect(seen).toEqual({ ':path': UNARY, 'x-mq-client-id': 'c' });
});

test('a streaming call keeps its grpc-timeout; one past 2^31 ms is clamped, not dropped', () => {
  expect(headersSeenByGrpc({ ':path': STREAMING, 'grpc-timeout': '12999m' })['grpc-timeout']).toBe('12999m');
  expect(headersSeenByGrpc({ ':path': STREAMING, 'grpc-timeout': '525600H' })['grpc-timeout']).toBe(
    CLAMPED_GRPC_TIMEOUT,
  );
  expect(headersSeenByGrpc({ ':path': STREAMING })).toEqual({ ':path': STREAMING });
});
