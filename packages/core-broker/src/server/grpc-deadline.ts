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
 * Prepares each call's `grpc-timeout` header before grpc-js reads it, on every http2 server of
 * `server` (a first 'stream' listener, which sees the same headers object grpc-js then reads).
 * Call after binding. test/rocketmq5/grpc-bad-input.test.ts holds the checks that this still
 * works with the grpc-js in use.
 *
 * - **Very long timeouts are honoured.** The official Java client opens its Telemetry stream with
 *   a timeout of 60 × 365 days (`grpc-timeout: 525600H`); grpc-js 1.14 wraps that past 2^31 ms into
 *   a timer of about 1 ms, so the stream ends DEADLINE_EXCEEDED at once and the client's start-up
 *   Settings exchange fails unless the reply wins the race. Such a header becomes
 *   {@link CLAMPED_GRPC_TIMEOUT}.
 * - **Calls of `unaryPaths` get no server-side deadline.** grpc-js arms a `setTimeout` for every
 *   call that carries a timeout (the official clients send one on every call) and clears it when
 *   the call ends: a timer inserted and removed per SendMessage and per AckMessage, ~1 % of the
 *   broker's busy time in a profile (docs/benchmarks.md). For a unary call it buys nothing: the
 *   handler runs to its end either way (none of them watches for cancellation), and a client that
 *   gives up at its deadline resets the stream itself, which grpc-js reports as a cancellation
 *   just the same. Streaming calls keep theirs: ReceiveMessage sizes its long poll by it and
 *   Telemetry streams end by it.
 */
export function prepareCallTimeouts(server: grpc.Server, unaryPaths: ReadonlySet<string>): void {
  const http2Servers = (server as unknown as { http2Servers?: Map<EventEmitter, unknown> }).http2Servers;
  if (!(http2Servers instanceof Map)) return;
  for (const http2Server of http2Servers.keys()) {
    http2Server.prependListener('stream', (_stream: unknown, headers: Record<string, unknown>) => {
      const raw = headers['grpc-timeout'];
      if (raw === undefined) return;
      if (unaryPaths.has(headers[':path'] as string)) {
        delete headers['grpc-timeout'];
        return;
      }
      const match = typeof raw === 'string' ? TIMEOUT.exec(raw) : null;
      if (match && Number(match[1]) * UNIT_MS[match[2]!]! > MAX_GRPC_CALL_TIMEOUT_MS)
        headers['grpc-timeout'] = CLAMPED_GRPC_TIMEOUT;
    });
  }
}
