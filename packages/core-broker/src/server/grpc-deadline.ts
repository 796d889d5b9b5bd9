import type { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';

/**
 * Longest call timeout, in ms, that grpc-js's server keeps as asked: it arms one `setTimeout` per
 * call with `(value × unit) | 0`, and Node's timers hold at most 2^31 − 1 ms.
 */
export const MAX_GRPC_CALL_TIMEOUT_MS = 2 ** 31 - 1;
/** What a longer `grpc-timeout` becomes: about 24.8 days, within {@link MAX_GRPC_CALL_TIMEOUT_MS}. */
export const CLAMPED_GRPC_TIMEOUT = '2147483S';

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };
const TIMEOUT = /^(\d{1,8})([HMSmun])$/;

/**
 * Makes the server honour very long call timeouts. The official Java client opens its Telemetry
 * stream with a timeout of 60 × 365 days (`grpc-timeout: 525600H`); grpc-js 1.14 wraps that past
 * 2^31 ms into a timer of about 1 ms, so the stream ends DEADLINE_EXCEEDED at once and the
 * client's start-up Settings exchange fails unless the reply wins the race. Each http2 server of
 * `server` gets a first 'stream' listener that rewrites such a header to
 * {@link CLAMPED_GRPC_TIMEOUT} before grpc-js reads the same headers object. Call after binding.
 * test/rocketmq5/grpc-bad-input.test.ts holds the check that this still works with the grpc-js in use.
 */
export function honourLongCallTimeouts(server: grpc.Server): void {
  const http2Servers = (server as unknown as { http2Servers?: Map<EventEmitter, unknown> }).http2Servers;
  if (!(http2Servers instanceof Map)) return;
  for (const http2Server of http2Servers.keys()) {
    http2Server.prependListener('stream', (_stream: unknown, headers: Record<string, unknown>) => {
      const raw = headers['grpc-timeout'];
      const match = typeof raw === 'string' ? TIMEOUT.exec(raw) : null;
      if (match && Number(match[1]) * UNIT_MS[match[2]!]! > MAX_GRPC_CALL_TIMEOUT_MS)
        headers['grpc-timeout'] = CLAMPED_GRPC_TIMEOUT;
    });
  }
}
