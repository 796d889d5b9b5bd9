import type * as otel from '@opentelemetry/api';
import type { MessageView } from '../message/message';

/**
 * W3C trace context carried in a message's user properties, and the OpenTelemetry spans of the
 * messaging semantic conventions around sends and handlers. `@opentelemetry/api` is an optional
 * peer dependency: without it (or without an SDK registered, when every span is a no-op with an
 * invalid context) nothing is added to messages and nothing is recorded.
 */

/** User property carrying the W3C `traceparent` of the span that sent the message. */
export const TRACEPARENT_PROPERTY = 'traceparent';
/** User property carrying the W3C `tracestate` of that span, when it has one. */
export const TRACESTATE_PROPERTY = 'tracestate';
/** The `messaging.system` value: RocketNest speaks RocketMQ's model. */
export const MESSAGING_SYSTEM = 'rocketmq';
const TRACER_NAME = '@rocketnest/core-broker';
/** `version-traceid-parentid-flags`, version 00 (W3C Trace Context). */
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

let api: typeof otel | null | undefined;

/** `@opentelemetry/api` when installed, loaded once; `undefined` when it is not. */
function openTelemetry(): typeof otel | undefined {
  if (api === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional peer, loaded on first use
      api = require('@opentelemetry/api') as typeof otel;
    } catch {
      api = null;
    }
  }
  return api ?? undefined;
}

/** The `traceparent` header value of a span context. */
function formatTraceparent(sc: otel.SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/** The span context a message's properties carry, or `undefined` when they carry none (or a malformed one). */
function carriedContext(
  o: typeof otel,
  properties: Readonly<Record<string, string>> | undefined,
): otel.SpanContext | undefined {
  const m = TRACEPARENT.exec(properties?.[TRACEPARENT_PROPERTY] ?? '');
  if (!m) return undefined;
  const sc: otel.SpanContext = {
    traceId: m[1]!,
    spanId: m[2]!,
    traceFlags: parseInt(m[3]!, 16),
    isRemote: true,
  };
  const state = properties?.[TRACESTATE_PROPERTY];
  if (state) sc.traceState = o.createTraceState(state);
  return o.trace.isSpanContextValid(sc) ? sc : undefined;
}

/** The trace context of the active span as message properties, or `undefined` with no valid active span. */
export function activeTraceProperties(): Record<string, string> | undefined {
  const o = openTelemetry();
  const sc = o?.trace.getActiveSpan()?.spanContext();
  if (!o || !sc || !o.trace.isSpanContextValid(sc)) return undefined;
  const out: Record<string, string> = { [TRACEPARENT_PROPERTY]: formatTraceparent(sc) };
  const state = sc.traceState?.serialize();
  if (state) out[TRACESTATE_PROPERTY] = state;
  return out;
}

/** What a traced send needs of the messages it sends: their properties, replaced with the trace context added. */
interface TracedInput {
  properties?: Readonly<Record<string, string>> | undefined;
  tag?: string | undefined;
}

/**
 * Runs `send` inside a PRODUCER span `send <topic>` (messaging semantic conventions) and writes the
 * span's context into each message's properties first, so the consumer's span joins the trace. A
 * message that already carries a trace context (an outbox row, written inside the request that
 * produced it) makes that context the span's parent instead of the active one.
 */
export function traceSend<T>(
  topic: string,
  producerGroup: string,
  inputs: TracedInput[],
  send: () => Promise<T>,
  messageIds: (result: T) => readonly string[],
): Promise<T> {
  const o = openTelemetry();
  if (!o) return send();
  const carried = carriedContext(o, inputs[0]?.properties);
  const parent = carried ? o.trace.setSpanContext(o.context.active(), carried) : o.context.active();
  const attributes: otel.Attributes = {
    'messaging.system': MESSAGING_SYSTEM,
    'messaging.destination.name': topic,
    'messaging.operation.type': 'send',
    'messaging.operation.name': 'send',
    'messaging.rocketmq.client_group': producerGroup,
  };
  if (inputs.length > 1) attributes['messaging.batch.message_count'] = inputs.length;
  const tag = inputs[0]?.tag;
  if (inputs.length === 1 && tag !== undefined) attributes['messaging.rocketmq.message.tag'] = tag;
  const span = o.trace
    .getTracer(TRACER_NAME)
    .startSpan(`send ${topic}`, { kind: o.SpanKind.PRODUCER, attributes }, parent);
  const sc = span.spanContext();
  if (o.trace.isSpanContextValid(sc)) {
    const traceparent = formatTraceparent(sc);
    const state = sc.traceState?.serialize();
    for (const input of inputs) {
      const properties: Record<string, string> = { ...input.properties, [TRACEPARENT_PROPERTY]: traceparent };
      if (state) properties[TRACESTATE_PROPERTY] = state;
      else delete properties[TRACESTATE_PROPERTY];
      input.properties = properties;
    }
  }
  let sending: Promise<T>;
  try {
    sending = o.context.with(o.trace.setSpan(parent, span), send);
  } catch (error) {
    sending = Promise.reject(error);
  }
  return sending.then(
    (result) => {
      const ids = messageIds(result);
      if (ids.length === 1) span.setAttribute('messaging.message.id', ids[0]!);
      span.end();
      return result;
    },
    (error: unknown) => {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: o.SpanStatusCode.ERROR, message: (error as Error)?.message });
      span.setAttribute('error.type', (error as { code?: string })?.code ?? 'Error');
      span.end();
      throw error;
    },
  );
}

/**
 * Runs `handle` inside a CONSUMER span `process <topic>` for one message: its parent is the
 * sender's span (from the message's `traceparent`), which it also links to, as the messaging
 * conventions ask of a process span; with no trace context it starts a new trace.
 */
export function traceProcess<T>(
  message: MessageView,
  consumerGroup: string,
  handle: () => Promise<T>,
  failureOf: (result: T) => string | undefined = () => undefined,
): Promise<T> {
  const o = openTelemetry();
  if (!o) return handle();
  const carried = carriedContext(o, message.properties);
  const parent = carried ? o.trace.setSpanContext(o.context.active(), carried) : o.context.active();
  const attributes: otel.Attributes = {
    'messaging.system': MESSAGING_SYSTEM,
    'messaging.destination.name': message.topic,
    'messaging.operation.type': 'process',
    'messaging.operation.name': 'process',
    'messaging.consumer.group.name': consumerGroup,
    'messaging.rocketmq.client_group': consumerGroup,
    'messaging.message.id': message.msgId,
    'messaging.message.body.size': message.body.length,
    'messaging.rocketmq.message.delivery_attempt': message.reconsumeTimes + 1,
  };
  if (message.tag !== undefined) attributes['messaging.rocketmq.message.tag'] = message.tag;
  if (message.keys.length > 0) attributes['messaging.rocketmq.message.keys'] = [...message.keys];
  const span = o.trace
    .getTracer(TRACER_NAME)
    .startSpan(
      `process ${message.topic}`,
      { kind: o.SpanKind.CONSUMER, attributes, links: carried ? [{ context: carried }] : [] },
      parent,
    );
  let handling: Promise<T>;
  try {
    handling = o.context.with(o.trace.setSpan(parent, span), handle);
  } catch (error) {
    handling = Promise.reject(error);
  }
  return handling.then(
    (result) => {
      // a handler outcome that is not a success (retry, dead letter) without a throw
      const failure = failureOf(result);
      if (failure !== undefined) span.setStatus({ code: o.SpanStatusCode.ERROR, message: failure });
      span.end();
      return result;
    },
    (error: unknown) => {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: o.SpanStatusCode.ERROR, message: (error as Error)?.message });
      span.end();
      throw error;
    },
  );
}
