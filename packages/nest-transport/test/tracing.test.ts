/**
 * Issue 20 #3: W3C trace context through a message. A request span sends over TCP to a real broker
 * process; the Nest handler runs in a CONSUMER span whose parent (and link) is the PRODUCER span:
 * one trace from the request to the handler, recorded by OpenTelemetry's in-memory exporter.
 */
import 'reflect-metadata';
import { Controller } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { context, propagation, SpanKind, SpanStatusCode, trace, type SpanContext } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { Producer, TcpTransport, TRACEPARENT_PROPERTY } from '@rocketnest/core-broker';
import { RocketContext, RocketListener } from '../src';
import { spawnBroker, type BrokerProcess } from './support/broker-process';
import { startRocketMicroservice } from './support/nest-app';
import { waitFor } from './support/wait';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();
let broker: BrokerProcess;

beforeAll(async () => {
  context.setGlobalContextManager(contextManager.enable());
  trace.setGlobalTracerProvider(provider);
  broker = await spawnBroker(['traced:2', 'RocketNestReply']);
});
afterAll(async () => {
  trace.disable();
  context.disable();
  propagation.disable();
  await provider.shutdown();
  expect(await broker?.stop()).toBe(0);
});
beforeEach(() => exporter.reset());

describe('trace context through a message', () => {
  it('one trace: request span → PRODUCER span → broker → CONSUMER span around the handler', async () => {
    const seen: Array<{ body: unknown; traceparent: string | undefined; active: SpanContext | undefined }> =
      [];
    @Controller()
    class Traced {
      @RocketListener('traced', 'created', { group: 'traced-group' })
      onCreated(@Payload() body: unknown, @Ctx() ctx: RocketContext) {
        seen.push({
          body,
          traceparent: ctx.getMessage().properties[TRACEPARENT_PROPERTY],
          active: trace.getActiveSpan()?.spanContext(),
        });
      }
    }
    const { app } = await startRocketMicroservice([Traced], {
      brokers: broker.brokers,
      consumer: { consumeFromWhere: 'FIRST_OFFSET', suspendTimeoutMs: 200 },
    });
    const transport = new TcpTransport({ brokers: broker.brokers });
    const producer = new Producer({ group: 'traced-producer', transport });
    await producer.start();
    try {
      const tracer = trace.getTracer('test');
      const sent = await tracer.startActiveSpan('POST /orders', async (request) => {
        try {
          return await producer.send({ topic: 'traced', tag: 'created', body: '{"id":7}' });
        } finally {
          request.end();
        }
      });
      await waitFor(() => seen.length === 1, 'the handler', 15_000);
      await waitFor(
        () => exporter.getFinishedSpans().some((s) => s.name === 'process traced'),
        'the process span',
      );

      const spans = exporter.getFinishedSpans();
      const byName = (name: string) => {
        const found = spans.filter((s) => s.name === name);
        expect(found).toHaveLength(1);
        return found[0]!;
      };
      const request = byName('POST /orders');
      const send = byName('send traced');
      const process = byName('process traced');
      const traceId = request.spanContext().traceId;
      // one trace
      expect(send.spanContext().traceId).toBe(traceId);
      expect(process.spanContext().traceId).toBe(traceId);
      // parentage: request → send → process, and process links to send
      expect(send.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
      expect(process.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
      expect(process.links.map((l) => l.context.spanId)).toEqual([send.spanContext().spanId]);
      // kinds and the messaging conventions
      expect(send.kind).toBe(SpanKind.PRODUCER);
      expect(process.kind).toBe(SpanKind.CONSUMER);
      expect(send.attributes).toMatchObject({
        'messaging.system': 'rocketmq',
        'messaging.destination.name': 'traced',
        'messaging.operation.type': 'send',
        'messaging.message.id': sent.msgId,
        'messaging.rocketmq.client_group': 'traced-producer',
        'messaging.rocketmq.message.tag': 'created',
      });
      expect(process.attributes).toMatchObject({
        'messaging.system': 'rocketmq',
        'messaging.destination.name': 'traced',
        'messaging.operation.type': 'process',
        'messaging.message.id': sent.msgId,
        'messaging.consumer.group.name': 'traced-group',
        'messaging.rocketmq.message.tag': 'created',
      });
      expect(process.status.code).not.toBe(SpanStatusCode.ERROR);
      // the message carried the send span's context; the handler ran inside the process span
      expect(seen[0]!.body).toEqual({ id: 7 });
      expect(seen[0]!.traceparent).toBe(`00-${traceId}-${send.spanContext().spanId}-01`);
      expect(seen[0]!.active?.spanId).toBe(process.spanContext().spanId);
    } finally {
      await producer.shutdown();
      await transport.close();
      await app.close();
    }
  }, 60_000);

  it('a failing handler marks its span as an error; a malformed traceparent starts a new trace', async () => {
    let calls = 0;
    @Controller()
    class Failing {
      @RocketListener('traced', 'broken', { group: 'failing-group', retryDelayMs: 100 })
      onBroken() {
        calls++;
        if (calls === 1) throw new Error('first attempt fails');
      }
    }
    const { app } = await startRocketMicroservice([Failing], {
      brokers: broker.brokers,
      consumer: { consumeFromWhere: 'FIRST_OFFSET', suspendTimeoutMs: 200 },
    });
    const transport = new TcpTransport({ brokers: broker.brokers });
    const producer = new Producer({ group: 'traced-producer-2', transport });
    await producer.start();
    try {
      // no active span, and a forged traceparent the producer span replaces with its own
      await producer.send({
        topic: 'traced',
        tag: 'broken',
        body: '{}',
        properties: { [TRACEPARENT_PROPERTY]: 'not-a-traceparent' },
      });
      await waitFor(
        () => exporter.getFinishedSpans().filter((s) => s.name === 'process traced').length === 2,
        'two process spans',
        20_000,
      );
      const send = exporter.getFinishedSpans().find((s) => s.name === 'send traced')!;
      expect(send.parentSpanContext).toBeUndefined();
      const processes = exporter.getFinishedSpans().filter((s) => s.name === 'process traced');
      expect(processes.map((s) => s.status.code)).toEqual([SpanStatusCode.ERROR, SpanStatusCode.UNSET]);
      for (const p of processes) {
        expect(p.spanContext().traceId).toBe(send.spanContext().traceId);
        expect(p.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
      }
      expect(processes.map((p) => p.attributes['messaging.rocketmq.message.delivery_attempt'])).toEqual([
        1, 2,
      ]);
    } finally {
      await producer.shutdown();
      await transport.close();
      await app.close();
    }
  }, 60_000);
});
