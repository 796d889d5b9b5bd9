import 'reflect-metadata';
import {
  BadRequestException,
  Controller,
  UsePipes,
  type ArgumentMetadata,
  type PipeTransform,
} from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { Producer, deadLetterTopicOf } from '@rocketnest/core-broker';
import { NonRetriableError, RocketContext, RocketListener } from '../src';
import { startTestBroker, type TestBroker } from './support/embedded-broker';
import { startRocketMicroservice, type CapturingLogger } from './support/nest-app';
import { waitFor } from './support/wait';

// What ValidationPipe does for an invalid payload (its default exceptionFactory): a
// BadRequestException listing the violations. class-validator is not a dependency here.
class OrderValidation implements PipeTransform {
  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    if (metadata.type !== 'body') return value; // @Payload() is 'body'; @Ctx() is 'custom', as ValidationPipe sees them
    const id = (value as { id?: unknown } | undefined)?.id;
    if (typeof id !== 'number') throw new BadRequestException(['id must be a number']);
    return value;
  }
}

class OutOfStock extends Error {}

let tb: TestBroker;
let producer: Producer;
const consumer = { consumeFromWhere: 'FIRST_OFFSET' as const, suspendTimeoutMs: 200 };

beforeAll(async () => {
  tb = await startTestBroker(['validated', 'marked', 'optout', 'custom', 'plain']);
  producer = new Producer({ group: 'dl-producer', transport: tb.transport });
  await producer.start();
});
afterAll(async () => {
  await producer.shutdown();
  await tb.close();
});

async function deadLetters(group: string): Promise<string[]> {
  const topic = deadLetterTopicOf(group);
  if (!tb.broker.getTopic(topic)) return [];
  const out: string[] = [];
  for (let q = 0; q < tb.broker.getTopic(topic)!.readQueueCount; q++) {
    const r = await tb.transport.pull(tb.broker.brokerName, {
      consumerGroup: 'dl-reader',
      topic,
      queueId: q,
      queueOffset: 0,
      maxCount: 32,
      suspendTimeoutMs: 0,
    });
    out.push(...(r.messages ?? []).map((m) => m.body.toString('utf8')));
  }
  return out;
}

function errorLine(logs: CapturingLogger, fragment: string) {
  return logs.lines.find((l) => l.level === 'error' && l.message.includes(fragment));
}

describe('failures that can never succeed go to the dead-letter queue at once', () => {
  it('a payload failing validation (BadRequestException) is dead-lettered on its first failure, logged with the real error', async () => {
    const attempts: number[] = [];
    @Controller()
    class Orders {
      @RocketListener('validated', 'created', { group: 'validated-group' })
      @UsePipes(new OrderValidation())
      onCreated(@Payload() order: { id: number }, @Ctx() ctx: RocketContext) {
        attempts.push(ctx.getReconsumeTimes());
        return order;
      }
    }
    const { app, server, logs } = await startRocketMicroservice([Orders], {
      transport: tb.transport,
      consumer,
    });
    const deadLettered: string[] = [];
    server.on('consumer.dead-lettered', ({ msgId }) => deadLettered.push(msgId));
    try {
      const bad = await producer.send({ topic: 'validated', tag: 'created', body: '{"id":"x"}' });
      await waitFor(() => deadLettered.length === 1, 'the dead-letter event');
      expect(deadLettered).toEqual([bad.msgId]);
      expect(attempts).toEqual([]); // the pipe refused before the handler ran
      expect(await deadLetters('validated-group')).toEqual(['{"id":"x"}']);
      const line = errorLine(logs, 'Orders.onCreated failed');
      expect(line?.message).toContain(
        `msgId=${bad.msgId} topic=validated tag=created group=validated-group reconsumeTimes=0`,
      );
      expect(line?.message).toContain('BadRequestException');
      expect(line?.message).not.toContain('Internal server error');
      expect(line?.message).toContain('without retries');
      expect(String(line?.trace)).toMatch(/BadRequestException[\s\S]*at /);
    } finally {
      await app.close();
    }
  });

  it('NonRetriableError skips the retries; an ordinary Error is retried and logged with its own message and stack', async () => {
    const calls: string[] = [];
    @Controller()
    class Marked {
      @RocketListener('marked', 'a', { group: 'marked-group', retryDelayMs: 50, maxReconsumeTimes: 1 })
      onA(@Payload() body: { n: number }, @Ctx() ctx: RocketContext) {
        calls.push(`a${body.n}@${ctx.getReconsumeTimes()}`);
        throw new NonRetriableError('order 7 is unknown', { cause: new Error('404') });
      }
      @RocketListener('marked', 'b', { group: 'marked-group' })
      onB(@Payload() body: { n: number }, @Ctx() ctx: RocketContext) {
        calls.push(`b${body.n}@${ctx.getReconsumeTimes()}`);
        throw new Error('payment provider down');
      }
    }
    const { app, server, logs } = await startRocketMicroservice([Marked], {
      transport: tb.transport,
      consumer,
    });
    const deadLettered: string[] = [];
    server.on('consumer.dead-lettered', ({ msgId }) => deadLettered.push(msgId));
    try {
      const a = await producer.send({ topic: 'marked', tag: 'a', body: '{"n":1}' });
      const b = await producer.send({ topic: 'marked', tag: 'b', body: '{"n":2}' });
      await waitFor(() => deadLettered.includes(a.msgId), 'the marked failure dead-lettered');
      expect(calls.filter((c) => c.startsWith('a'))).toEqual(['a1@0']);
      expect(errorLine(logs, `msgId=${a.msgId}`)?.message).toContain('NonRetriableError: order 7 is unknown');
      // the ordinary error: logged with the error itself, then retried (not dead-lettered yet)
      await waitFor(() => calls.includes('b2@0'), 'the first attempt of b');
      const line = errorLine(logs, `msgId=${b.msgId}`);
      expect(line?.message).toContain('Error: payment provider down; retried');
      expect(line?.message).toContain('reconsumeTimes=0');
      expect(String(line?.trace)).toContain('payment provider down');
      expect(deadLettered).not.toContain(b.msgId);
    } finally {
      await app.close();
    }
  });

  it('deadLetterOn: [] on a listener retries even a validation failure; a server-wide deadLetterOn names custom errors', async () => {
    const optOut: number[] = [];
    const custom: number[] = [];
    @Controller()
    class Configured {
      @RocketListener('optout', {
        group: 'optout-group',
        retryDelayMs: 50,
        maxReconsumeTimes: 1,
        deadLetterOn: [],
      })
      onOptOut(@Ctx() ctx: RocketContext) {
        optOut.push(ctx.getReconsumeTimes());
        throw new BadRequestException('still invalid');
      }
      @RocketListener('custom', { group: 'custom-group', retryDelayMs: 50 })
      onCustom(@Ctx() ctx: RocketContext) {
        custom.push(ctx.getReconsumeTimes());
        throw new OutOfStock('sku 3 is gone');
      }
    }
    const { app, server } = await startRocketMicroservice([Configured], {
      transport: tb.transport,
      consumer,
      deadLetterOn: [OutOfStock, (error) => error instanceof BadRequestException],
    });
    const deadLettered: string[] = [];
    server.on('consumer.dead-lettered', ({ msgId }) => deadLettered.push(msgId));
    try {
      await producer.send({ topic: 'optout', body: '{"o":1}' });
      await producer.send({ topic: 'custom', body: '{"c":1}' });
      // (a retried message is dead-lettered under its retry copy's id)
      await waitFor(() => deadLettered.length === 2, 'both dead-lettered');
      expect((await deadLetters('optout-group')).length + (await deadLetters('custom-group')).length).toBe(2);
      expect(optOut).toEqual([0, 1]); // retried once, then out of retries
      expect(custom).toEqual([0]); // dead-lettered at once
    } finally {
      await app.close();
    }
  });
});
