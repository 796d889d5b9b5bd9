import 'reflect-metadata';
import {
  Catch,
  Controller,
  Injectable,
  UseFilters,
  UseGuards,
  UseInterceptors,
  type CallHandler,
  type NestInterceptor,
  type ArgumentsHost,
  type CanActivate,
  type ExecutionContext,
  type PipeTransform,
  type RpcExceptionFilter,
} from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { Producer, deadLetterTopicOf, isRocketError, type SendResult } from '@rocketnest/core-broker';
import { throwError, type Observable } from 'rxjs';
import { RocketContext, RocketDiscard, RocketListener, RocketServer, isRocketContext } from '../src';
import { startTestBroker, type TestBroker } from './support/embedded-broker';
import { startRocketMicroservice } from './support/nest-app';
import { sleep, waitFor } from './support/wait';

let tb: TestBroker;
let producer: Producer;
const consumer = { consumeFromWhere: 'FIRST_OFFSET' as const, suspendTimeoutMs: 200 };

beforeAll(async () => {
  tb = await startTestBroker([
    'payloads',
    'orders',
    'payments',
    'audit',
    { topic: 'fifo', fifo: true }, // message groups need a FIFO topic
    'retries',
    'discards',
    'pipes',
    'guarded',
    'pops',
    'manual',
  ]);
  producer = new Producer({ group: 'test-producer', transport: tb.transport });
  await producer.start();
});
afterAll(async () => {
  await producer.shutdown();
  await tb.close();
});

function send(
  topic: string,
  tag: string,
  body: unknown,
  extra: { properties?: Record<string, string>; messageGroup?: string } = {},
): Promise<SendResult> {
  return producer.send({ topic, tag, body: JSON.stringify(body), ...extra });
}

async function dlqDepth(group: string): Promise<number> {
  const topic = deadLetterTopicOf(group);
  if (!tb.broker.getTopic(topic)) return 0;
  let total = 0;
  for (let q = 0; q < tb.broker.getTopic(topic)!.readQueueCount; q++) {
    total += await tb.transport.maxOffset(tb.broker.brokerName, { topic, queueId: q });
  }
  return total;
}

describe('RocketServer on an embedded broker', () => {
  it('dispatches by tag within one merged subscription and hands handlers the payload and context', async () => {
    const seen: Array<{ handler: string; payload: unknown; tag: string | undefined; msgId: string }> = [];
    @Controller()
    class OrdersController {
      @RocketListener('orders', 'created', { group: 'tags-group' })
      onCreated(@Payload() payload: unknown, @Ctx() ctx: RocketContext) {
        seen.push({ handler: 'created', payload, tag: ctx.getTag(), msgId: ctx.getMessageId() });
      }
      @RocketListener('orders', 'paid || refunded', { group: 'tags-group' })
      onPaid(@Payload() payload: unknown, @Ctx() ctx: RocketContext) {
        seen.push({ handler: 'paid', payload, tag: ctx.getTag(), msgId: ctx.getMessageId() });
      }
    }
    const { app, server } = await startRocketMicroservice([OrdersController], {
      transport: tb.transport,
      consumer,
    });
    try {
      const sent = await send('orders', 'created', { id: 1 });
      await send('orders', 'shipped', { id: 2 });
      await send('orders', 'refunded', { id: 3 });
      await waitFor(() => seen.length >= 2, 'two messages');
      expect(seen).toEqual(
        expect.arrayContaining([
          { handler: 'created', payload: { id: 1 }, tag: 'created', msgId: sent.msgId },
          expect.objectContaining({ handler: 'paid', payload: { id: 3 }, tag: 'refunded' }),
        ]),
      );
      const { pushConsumers } = server.unwrap<{ pushConsumers: Map<string, unknown> }>();
      expect([...pushConsumers.keys()]).toEqual(['tags-group']);
      await sleep(100);
      expect(seen).toHaveLength(2); // "shipped" has no listener and was filtered by the broker
    } finally {
      await app.close();
    }
  });

  it('filters with SQL92 on properties, and exposes keys, properties and born time in the context', async () => {
    const seen: Array<{ amount: string | undefined; keys: readonly string[]; born: number }> = [];
    @Controller()
    class PaymentsController {
      @RocketListener('payments', { group: 'sql-group', sql: 'amount > 100 AND currency = ' + "'EUR'" })
      onLarge(@Payload() _payload: unknown, @Ctx() ctx: RocketContext) {
        seen.push({
          amount: ctx.getProperties().amount,
          keys: ctx.getKeys(),
          born: ctx.getBornTimestampMs(),
        });
      }
    }
    const { app } = await startRocketMicroservice([PaymentsController], {
      transport: tb.transport,
      consumer,
    });
    try {
      const before = Date.now();
      await producer.send({
        topic: 'payments',
        body: '{}',
        keys: ['p-1'],
        properties: { amount: '50', currency: 'EUR' },
      });
      await producer.send({
        topic: 'payments',
        body: '{}',
        keys: ['p-2'],
        properties: { amount: '500', currency: 'EUR' },
      });
      await producer.send({
        topic: 'payments',
        body: '{}',
        keys: ['p-3'],
        properties: { amount: '900', currency: 'USD' },
      });
      await waitFor(() => seen.length >= 1, 'the large EUR payment');
      await sleep(150);
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ amount: '500', keys: ['p-2'] });
      expect(seen[0]!.born).toBeGreaterThanOrEqual(before - 1000);
    } finally {
      await app.close();
    }
  });

  it('broadcasting delivers every message to every instance of the group', async () => {
    const seenBy: Record<string, string[]> = { a: [], b: [] };
    function makeController(name: 'a' | 'b') {
      @Controller()
      class AuditController {
        @RocketListener('audit', '*', { group: 'broadcast-group', messageModel: 'BROADCASTING' })
        onAudit(@Payload() payload: { n: number }) {
          seenBy[name]!.push(String(payload.n));
        }
      }
      return AuditController;
    }
    const one = await startRocketMicroservice([makeController('a')], { transport: tb.transport, consumer });
    const two = await startRocketMicroservice([makeController('b')], { transport: tb.transport, consumer });
    try {
      for (let n = 0; n < 4; n++) await send('audit', 'x', { n });
      await waitFor(() => seenBy.a!.length === 4 && seenBy.b!.length === 4, 'four messages on each instance');
      expect(seenBy.a!.sort()).toEqual(['0', '1', '2', '3']);
      expect(seenBy.b!.sort()).toEqual(['0', '1', '2', '3']);
    } finally {
      await one.app.close();
      await two.app.close();
    }
  });

  it('orderly listeners see each message group in send order', async () => {
    const seen = new Map<string, number[]>();
    @Controller()
    class FifoController {
      @RocketListener('fifo', 'step', { group: 'orderly-group', consumeMode: 'ORDERLY', concurrency: 4 })
      async onStep(@Payload() payload: { group: string; seq: number }) {
        await sleep(Math.floor(Math.random() * 4));
        seen.set(payload.group, [...(seen.get(payload.group) ?? []), payload.seq]);
      }
    }
    const { app } = await startRocketMicroservice([FifoController], { transport: tb.transport, consumer });
    try {
      const groups = ['g1', 'g2', 'g3', 'g4', 'g5'];
      for (let seq = 0; seq < 10; seq++) {
        for (const group of groups) await send('fifo', 'step', { group, seq }, { messageGroup: group });
      }
      await waitFor(() => groups.every((g) => (seen.get(g)?.length ?? 0) === 10), 'fifty messages');
      for (const group of groups) expect(seen.get(group)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    } finally {
      await app.close();
    }
  });

  it('a throwing listener is retried with backoff, then dead-lettered; errors are logged with id, topic and group', async () => {
    const attempts: number[] = [];
    @Controller()
    class RetryController {
      @RocketListener('retries', 'fail', { group: 'retry-group', maxReconsumeTimes: 2, retryDelayMs: 50 })
      onFail(@Ctx() ctx: RocketContext) {
        attempts.push(ctx.getReconsumeTimes());
        throw new Error('payment service down');
      }
    }
    const deadLettered: string[] = [];
    const { app, server, logs } = await startRocketMicroservice([RetryController], {
      transport: tb.transport,
      consumer,
    });
    server.on('consumer.dead-lettered', ({ msgId }) => deadLettered.push(msgId));
    try {
      const sent = await send('retries', 'fail', { id: 9 });
      await waitFor(() => deadLettered.length === 1, 'the dead-letter event', 10_000);
      expect(attempts).toEqual([0, 1, 2]);
      expect(await dlqDepth('retry-group')).toBe(1);
      expect(logs.has('error', `msgId=${sent.msgId} topic=retries tag=fail group=retry-group`)).toBe(true);
      expect(logs.has('error', 'RocketListener') || logs.has('error', 'RetryController.onFail failed')).toBe(
        true,
      );
      expect(logs.has('error', 'moved to the dead-letter queue')).toBe(true);
    } finally {
      await app.close();
    }
  });

  it('RocketDiscard acks without retry, and an exception filter may turn an error into a discard', async () => {
    const calls: string[] = [];
    class NotAnOrder extends Error {}
    @Catch(NotAnOrder)
    class DiscardInvalid implements RpcExceptionFilter<NotAnOrder> {
      catch(exception: NotAnOrder, _host: ArgumentsHost): Observable<never> {
        return throwError(() => new RocketDiscard(`not an order: ${exception.message}`));
      }
    }
    @Controller()
    class DiscardController {
      @RocketListener('discards', 'direct', { group: 'discard-group', retryDelayMs: 50 })
      onDirect() {
        calls.push('direct');
        throw new RocketDiscard('unknown schema version');
      }
      @UseFilters(new DiscardInvalid())
      @RocketListener('discards', 'filtered', { group: 'discard-group', retryDelayMs: 50 })
      onFiltered() {
        calls.push('filtered');
        throw new NotAnOrder('no id');
      }
    }
    const { app, logs } = await startRocketMicroservice([DiscardController], {
      transport: tb.transport,
      consumer,
    });
    try {
      const direct = await send('discards', 'direct', {});
      const filtered = await send('discards', 'filtered', {});
      await waitFor(() => calls.length >= 2, 'both handlers');
      await sleep(400); // a retry would come back after 50 ms
      expect(calls.sort()).toEqual(['direct', 'filtered']);
      expect(await dlqDepth('discard-group')).toBe(0);
      expect(logs.has('warn', `discarded msgId=${direct.msgId}`)).toBe(true);
      expect(logs.has('warn', `discarded msgId=${filtered.msgId}`)).toBe(true);
      expect(logs.has('warn', 'not an order: no id')).toBe(true);
    } finally {
      await app.close();
    }
  });

  it('applies pipes and interceptors, and lets guards recognise the RocketNest context', async () => {
    const seen: unknown[] = [];
    const guardSaw: Array<{ rocket: boolean; topic: string }> = [];
    const intercepted: string[] = [];
    @Injectable()
    class ToOrder implements PipeTransform {
      transform(value: { id: string }) {
        return { orderId: Number(value.id), parsedBy: 'ToOrder' };
      }
    }
    @Injectable()
    class HttpOnlyGuard implements CanActivate {
      canActivate(context: ExecutionContext): boolean {
        const rocket = isRocketContext(context);
        guardSaw.push({
          rocket,
          topic: rocket ? context.switchToRpc().getContext<RocketContext>().getTopic() : '',
        });
        return rocket; // an HTTP-only guard lets message handlers through
      }
    }
    @Injectable()
    class Timing implements NestInterceptor {
      intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
        intercepted.push(context.switchToRpc().getContext<RocketContext>().getTag()!);
        return next.handle();
      }
    }
    @Controller()
    class PipesController {
      @UseInterceptors(Timing)
      @UseGuards(HttpOnlyGuard)
      @RocketListener('pipes', 'order', { group: 'pipes-group' })
      onOrder(@Payload(ToOrder) order: unknown) {
        seen.push(order);
      }
    }
    const { app } = await startRocketMicroservice([PipesController], { transport: tb.transport, consumer }, [
      ToOrder,
      HttpOnlyGuard,
      Timing,
    ]);
    try {
      await send('pipes', 'order', { id: '42' });
      await waitFor(() => seen.length === 1, 'the piped order');
      expect(seen[0]).toEqual({ orderId: 42, parsedBy: 'ToOrder' });
      expect(guardSaw).toEqual([{ rocket: true, topic: 'pipes' }]);
      expect(intercepted).toEqual(['order']);
      expect(isRocketContext({})).toBe(false);
    } finally {
      await app.close();
    }
  });

  it('a guard that refuses makes the message fail (retried), it is not silently consumed', async () => {
    let refused = 0;
    @Injectable()
    class DenyAll implements CanActivate {
      canActivate(): boolean {
        refused++;
        return false;
      }
    }
    @Controller()
    class GuardedController {
      @UseGuards(DenyAll)
      @RocketListener('guarded', 'x', { group: 'guarded-group', retryDelayMs: 50, maxReconsumeTimes: 1 })
      onX() {
        throw new Error('must not run');
      }
    }
    const { app } = await startRocketMicroservice(
      [GuardedController],
      { transport: tb.transport, consumer },
      [DenyAll],
    );
    try {
      await send('guarded', 'x', {});
      await waitFor(() => refused === 2, 'the first attempt and its retry');
      await sleep(200);
      expect(refused).toBe(2);
      expect(await dlqDepth('guarded-group')).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('manual acknowledgement: nack(delay) redelivers, ack() settles, forgetting both redelivers', async () => {
    const deliveries: number[] = [];
    @Controller()
    class ManualController {
      @RocketListener('manual', 'job', { group: 'manual-group', manualAck: true, retryDelayMs: 50 })
      onJob(@Ctx() ctx: RocketContext) {
        const attempt = ctx.getReconsumeTimes();
        deliveries.push(attempt);
        if (attempt === 0) ctx.nack(30);
        else if (attempt === 1)
          return; // neither: consumed again
        else ctx.ack();
      }
    }
    const { app, logs } = await startRocketMicroservice([ManualController], {
      transport: tb.transport,
      consumer,
    });
    try {
      await send('manual', 'job', {});
      await waitFor(() => deliveries.length === 3, 'three deliveries');
      await sleep(300);
      expect(deliveries).toEqual([0, 1, 2]);
      expect(logs.has('warn', 'without ctx.ack() or ctx.nack()')).toBe(true);
    } finally {
      await app.close();
    }
  });

  it('pop consumption (consumerType simple) receives, acks, dispatches by tag, and redelivers a failure', async () => {
    const seen: Array<{ tag: string | undefined; attempt: number }> = [];
    const flaky: number[] = [];
    @Controller()
    class PopController {
      @RocketListener('pops', 'a', { group: 'pop-group', consumerType: 'simple', invisibleTimeMs: 10_000 })
      onA(@Ctx() ctx: RocketContext) {
        seen.push({ tag: ctx.getTag(), attempt: ctx.getDeliveryAttempt() });
      }
      @RocketListener('pops', 'b', { group: 'pop-group', consumerType: 'simple' })
      onB(@Ctx() ctx: RocketContext) {
        seen.push({ tag: ctx.getTag(), attempt: ctx.getDeliveryAttempt() });
      }
      @RocketListener('pops', 'flaky', { group: 'pop-group', consumerType: 'simple', retryDelayMs: 50 })
      onFlaky(@Ctx() ctx: RocketContext) {
        flaky.push(ctx.getDeliveryAttempt());
        if (ctx.getDeliveryAttempt() === 1) throw new Error('first try fails');
      }
    }
    const { app, server } = await startRocketMicroservice([PopController], {
      transport: tb.transport,
      popAwaitDurationMs: 200,
    });
    try {
      await send('pops', 'a', {});
      await send('pops', 'b', {});
      await send('pops', 'c', {});
      await send('pops', 'flaky', {});
      await waitFor(() => seen.length === 2, 'two popped messages');
      // a failure makes the message visible again after retryDelayMs, with the next delivery attempt
      await waitFor(() => flaky.length === 2, 'the redelivery of the failed message');
      expect(flaky).toEqual([1, 2]);
      expect(seen.map((s) => s.tag).sort()).toEqual(['a', 'b']);
      expect(seen.every((s) => s.attempt === 1)).toBe(true);
      const { simpleConsumers } = server.unwrap<{ simpleConsumers: Map<string, unknown> }>();
      expect([...simpleConsumers.keys()]).toEqual(['pop-group']);
    } finally {
      const started = Date.now();
      await app.close();
      expect(Date.now() - started).toBeLessThan(2000);
    }
  });

  it('a topic that does not exist yet does not stop listen() (as RocketMQ) and is logged with the group', async () => {
    @Controller()
    class Missing {
      @RocketListener('no-such-topic', 'x', { group: 'missing-group' })
      on() {}
    }
    const { app, logs } = await startRocketMicroservice([Missing], { transport: tb.transport });
    try {
      await waitFor(() => logs.has('warn', 'consumer group=missing-group'), 'the route warning');
      expect(logs.lines.find((l) => l.message.includes('missing-group'))!.message).toMatch(
        /TOPIC_NOT_FOUND|no-such-topic/,
      );
    } finally {
      await app.close();
    }
  });

  it('payloads: JSON by default, the raw Buffer when asked, a custom deserializer; unreadable JSON is retried', async () => {
    const seen: Record<string, unknown[]> = {};
    @Controller()
    class PayloadController {
      @RocketListener('payloads', 'json', { group: 'payload-group', retryDelayMs: 50, maxReconsumeTimes: 1 })
      onJson(@Payload() payload: unknown) {
        (seen.json ??= []).push(payload);
      }
      @RocketListener('payloads', 'raw', { group: 'payload-group', raw: true })
      onRaw(@Payload() payload: unknown) {
        (seen.raw ??= []).push(payload);
      }
      @RocketListener('payloads', 'csv', {
        group: 'payload-group',
        deserializer: (m) => m.body.toString('utf8').split(','),
      })
      onCsv(@Payload() payload: unknown) {
        (seen.csv ??= []).push(payload);
      }
    }
    const { app, logs } = await startRocketMicroservice([PayloadController], {
      transport: tb.transport,
      consumer,
    });
    try {
      await producer.send({ topic: 'payloads', tag: 'json', body: '{"a":1}' });
      await producer.send({ topic: 'payloads', tag: 'raw', body: Buffer.from([1, 2, 3]) });
      await producer.send({ topic: 'payloads', tag: 'csv', body: 'x,y' });
      const bad = await producer.send({ topic: 'payloads', tag: 'json', body: 'not json' });
      await waitFor(() => !!seen.json && !!seen.raw && !!seen.csv, 'the three readable payloads');
      expect(seen.json).toEqual([{ a: 1 }]);
      expect(Buffer.isBuffer(seen.raw![0])).toBe(true);
      expect([...(seen.raw![0] as Buffer)]).toEqual([1, 2, 3]);
      expect(seen.csv).toEqual([['x', 'y']]);
      await waitFor(
        () => logs.has('error', `cannot deserialize msgId=${bad.msgId}`),
        'the deserialize error',
      );
    } finally {
      await app.close();
    }
  });

  it('unwrap() before listen() throws a clear error; on() before listen() is kept', async () => {
    const server = new RocketServer({ transport: tb.transport });
    expect(() => server.unwrap()).toThrow(/not listening: call listen\(\)/);
    const rebalances: string[] = [];
    server.on('consumer.rebalance', ({ topic }) => rebalances.push(topic));
    @Controller()
    class EarlyController {
      @RocketListener('orders', 'early', { group: 'early-group' })
      onEarly() {}
    }
    const { Test } = await import('@nestjs/testing');
    const moduleRef = await Test.createTestingModule({ controllers: [EarlyController] }).compile();
    const app = moduleRef.createNestMicroservice({ strategy: server, logger: false });
    await app.listen();
    try {
      expect(rebalances).toContain('orders');
      const statuses: string[] = [];
      server.status.subscribe((s) => statuses.push(s));
      expect(statuses).toEqual(['connected']);
    } finally {
      await app.close();
    }
  });
});

describe('conflicting declarations fail at listen()', () => {
  async function listenError(controller: new () => unknown, group = 'conflicts'): Promise<unknown> {
    try {
      const { app } = await startRocketMicroservice([controller as never], {
        transport: tb.transport,
        group,
      });
      await app.close();
    } catch (error) {
      return error;
    }
    return undefined;
  }

  it('two listeners for one tag in one group', async () => {
    @Controller()
    class Twice {
      @RocketListener('orders', 'created')
      first() {}
      @RocketListener('orders', 'created || paid')
      second() {}
    }
    const error = await listenError(Twice);
    expect(isRocketError(error) && error.code).toBe('INVALID_OPTION');
    expect((error as Error).message).toMatch(/Twice\.first and Twice\.second both listen to tag "created"/);
  });

  it('a SQL filter next to a tag listener on the same group and topic', async () => {
    @Controller()
    class SqlAndTag {
      @RocketListener('orders', 'created')
      byTag() {}
      @RocketListener('orders', { sql: "region = 'eu'" })
      bySql() {}
    }
    const error = await listenError(SqlAndTag);
    expect((error as Error).message).toMatch(/SqlAndTag\.byTag and SqlAndTag\.bySql .* filters by SQL/);
  });

  it('different consumption modes in one group', async () => {
    @Controller()
    class Modes {
      @RocketListener('orders', 'a', { consumeMode: 'ORDERLY' })
      orderly() {}
      @RocketListener('payments', 'b', { consumeMode: 'CONCURRENTLY' })
      concurrent() {}
    }
    const error = await listenError(Modes);
    expect((error as Error).message).toMatch(
      /Modes\.orderly and Modes\.concurrent share consumer group "conflicts" but set consumeMode to ORDERLY and CONCURRENTLY/,
    );
  });

  it('a listener of every tag next to a tag listener; separate groups are fine', async () => {
    @Controller()
    class Star {
      @RocketListener('orders')
      all() {}
      @RocketListener('orders', 'paid')
      paid() {}
    }
    expect((await listenError(Star)) as Error).toBeInstanceOf(Error);
    @Controller()
    class OwnGroups {
      @RocketListener('orders', '*', { group: 'own-a' })
      all() {}
      @RocketListener('orders', 'paid', { group: 'own-b' })
      paid() {}
    }
    expect(await listenError(OwnGroups)).toBeUndefined();
  });
});
