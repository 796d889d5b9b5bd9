/**
 * Issue 20 #3, Express: a send from a route handler is a child of the request's span (as HTTP
 * instrumentation makes it), and the message carries that trace on to its consumer.
 */
import express from 'express';
import request from 'supertest';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { TRACEPARENT_PROPERTY } from '@rocketnest/core-broker';
import { traceProcess } from '@rocketnest/core-broker/internal';
import { rocketPublisher } from '../src/index';
import { startEmbeddedBroker, type EmbeddedBroker } from './harness';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();
let env: EmbeddedBroker;

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
  env = await startEmbeddedBroker(['orders']);
});
afterEach(async () => {
  await env.close();
});

test('request span → PRODUCER span of req.rocket.send → CONSUMER span of the handler: one trace', async () => {
  const publisher = rocketPublisher({ transport: env.transport });
  const tracer = trace.getTracer('http');
  const app = express();
  // what @opentelemetry/instrumentation-http does: the request runs inside a SERVER span
  app.use((req, res, next) =>
    tracer.startActiveSpan(`${req.method} ${req.path}`, { kind: SpanKind.SERVER }, (span) => {
      res.on('finish', () => span.end());
      next();
    }),
  );
  app.use(publisher);
  app.post('/orders/:id', async (req, res) => {
    res
      .status(201)
      .json(await req.rocket!.send({ topic: 'orders', tag: 'created', body: `{"id":${req.params.id}}` }));
  });
  try {
    const answer = await request(app).post('/orders/9');
    expect(answer.status).toBe(201);
    const [message] = await env.read('orders');
    // a consumer handles it in a process span
    await traceProcess(message!, 'billing', async () => undefined);

    const spans = exporter.getFinishedSpans();
    const server = spans.find((s) => s.name === 'POST /orders/9')!;
    const send = spans.find((s) => s.name === 'send orders')!;
    const process = spans.find((s) => s.name === 'process orders')!;
    expect(send.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    expect(send.attributes['messaging.message.id']).toBe(answer.body.msgId);
    expect(message!.properties[TRACEPARENT_PROPERTY]).toBe(
      `00-${server.spanContext().traceId}-${send.spanContext().spanId}-01`,
    );
    expect(process.spanContext().traceId).toBe(server.spanContext().traceId);
    expect(process.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
  } finally {
    await publisher.close();
  }
});
