/**
 * Issue 20 #3, the outbox: the trace context of the request that wrote an outbox row is stored with
 * the row (in its `headers` JSON, with the other user properties), and the relay's PRODUCER span —
 * run later, outside that request — is its child, so the message carries the request's trace.
 */
import Database from 'better-sqlite3';
import type { Database as SqliteDatabase } from 'better-sqlite3';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { OutboxRelay } from '../../src/outbox/outbox-relay';
import { SqliteOutbox } from '../../src/outbox/sqlite-outbox';
import { TRACEPARENT_PROPERTY } from '../../src/client/tracing';
import { startBrokerAndProducer } from './relay-harness';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();
let db: SqliteDatabase;
let env: Awaited<ReturnType<typeof startBrokerAndProducer>>;
let outbox: SqliteOutbox;

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
  trace.setGlobalTracerProvider(provider);
});
afterAll(async () => {
  trace.disable();
  context.disable();
  propagation.disable();
  await provider.shutdown();
});
beforeEach(async () => {
  exporter.reset();
  db = new Database(':memory:');
  env = await startBrokerAndProducer(['orders']);
  outbox = new SqliteOutbox({ db });
  outbox.migrate();
});
afterEach(async () => {
  await env.close();
  db.close();
});

test('the row keeps the request trace context; the relay send span is its child; the message carries it', async () => {
  const tracer = trace.getTracer('test');
  const request = tracer.startActiveSpan('POST /checkout', (span) => {
    db.transaction(() =>
      outbox.add(db, { topic: 'orders', tag: 'created', body: '{"id":1}', properties: { a: 'b' } }),
    )();
    span.end();
    return span.spanContext();
  });
  const row = db.prepare('SELECT headers FROM rocketnest_outbox').get() as { headers: string };
  expect(JSON.parse(row.headers)).toEqual({
    a: 'b',
    [TRACEPARENT_PROPERTY]: `00-${request.traceId}-${request.spanId}-01`,
  });

  // the relay runs later, outside the request
  const report = await new OutboxRelay({ outbox, producer: env.producer }).runOnce();
  expect(report.published).toBe(1);
  const send = exporter.getFinishedSpans().find((s) => s.name === 'send orders')!;
  expect(send.kind).toBe(SpanKind.PRODUCER);
  expect(send.spanContext().traceId).toBe(request.traceId);
  expect(send.parentSpanContext?.spanId).toBe(request.spanId);
  const [message] = await env.read('orders');
  expect(message!.properties).toMatchObject({
    a: 'b',
    [TRACEPARENT_PROPERTY]: `00-${request.traceId}-${send.spanContext().spanId}-01`,
  });
});

test('without an active span nothing is added to the row', async () => {
  db.transaction(() => outbox.add(db, { topic: 'orders', body: 'x' }))();
  const row = db.prepare('SELECT headers FROM rocketnest_outbox').get() as { headers: string | null };
  expect(row.headers).toBeNull();
});
