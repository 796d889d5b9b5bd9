import 'reflect-metadata';
import { Controller } from '@nestjs/common';
import { ClientsModule, Ctx, Payload, RpcException, type ClientProxy } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { isRocketError, type SendResult } from '@rocketnest/core-broker';
import { firstValueFrom, lastValueFrom, of } from 'rxjs';
import {
  RocketClient,
  RocketContext,
  RocketListener,
  RocketRecordBuilder,
  type RocketClientOptions,
} from '../src';
import { startTestBroker, type TestBroker } from './support/embedded-broker';
import { startRocketMicroservice } from './support/nest-app';
import { waitFor } from './support/wait';

let tb: TestBroker;
const consumer = { consumeFromWhere: 'FIRST_OFFSET' as const, suspendTimeoutMs: 200 };

beforeAll(async () => {
  tb = await startTestBroker(['events', 'rpc', 'silent']);
});
afterAll(async () => {
  await tb.close();
});

const seen: Array<{ payload: unknown; ctx: RocketContext; at: number }> = [];

@Controller()
class RpcController {
  @RocketListener('events', '*', { group: 'client-events' })
  onEvent(@Payload() payload: unknown, @Ctx() ctx: RocketContext) {
    seen.push({ payload, ctx, at: Date.now() });
  }

  @RocketListener('rpc', 'sum', { group: 'client-rpc', reply: true })
  sum(@Payload() numbers: number[]) {
    return numbers.reduce((a, b) => a + b, 0);
  }

  @RocketListener('rpc', 'echo', { group: 'client-rpc', reply: true })
  echo(@Payload() payload: unknown, @Ctx() ctx: RocketContext) {
    return of({ payload, tag: ctx.getTag(), region: ctx.getProperties().region });
  }

  @RocketListener('rpc', 'fail', { group: 'client-rpc', reply: true })
  fail(): never {
    throw new RpcException('amount must be positive');
  }
}

describe('RocketClient', () => {
  let app: Awaited<ReturnType<typeof startRocketMicroservice>>['app'];
  beforeAll(async () => {
    ({ app } = await startRocketMicroservice([RpcController], { transport: tb.transport, consumer }));
  });
  afterAll(async () => {
    await app.close();
  });

  it('emit() sends; a record sets tag, keys, properties, message group and delay', async () => {
    const client = new RocketClient({ transport: tb.transport });
    try {
      const plain = await lastValueFrom(client.emit<SendResult>('events', { n: 1 }));
      expect(plain.topic).toBe('events');
      const sentAt = Date.now();
      const record = new RocketRecordBuilder({ n: 2 })
        .setTag('created')
        .setKeys(['order-2'])
        .setProperties({ region: 'eu' })
        .setMessageGroup('order-2')
        .setDelayMs(300)
        .build();
      const delayed = await lastValueFrom(client.emit<SendResult>('events', record));
      await waitFor(() => seen.length === 2, 'both events');
      const [first, second] = seen;
      expect(first!.payload).toEqual({ n: 1 });
      expect(second!.payload).toEqual({ n: 2 });
      expect(delayed.topic).toBe('events'); // a delayed message is stored again when due, under a new id
      expect(second!.ctx.getTag()).toBe('created');
      expect(second!.ctx.getKeys()).toEqual(['order-2']);
      expect(second!.ctx.getProperties()).toMatchObject({ region: 'eu' });
      expect(second!.ctx.getMessageGroup()).toBe('order-2');
      expect(second!.at - sentAt).toBeGreaterThanOrEqual(250);
    } finally {
      await client.close();
    }
  });

  it('send() is request-reply through the reply topic', async () => {
    const client = new RocketClient({ transport: tb.transport });
    try {
      const sum = await firstValueFrom(
        client.send<number>('rpc', new RocketRecordBuilder([1, 2, 3]).setTag('sum').build()),
      );
      expect(sum).toBe(6);
      const echoed = await firstValueFrom(
        client.send(
          'rpc',
          new RocketRecordBuilder('hi').setTag('echo').setProperties({ region: 'us' }).build(),
        ),
      );
      expect(echoed).toEqual({ payload: 'hi', tag: 'echo', region: 'us' });
    } finally {
      await client.close();
    }
  });

  it('each client gets only its own replies (its id is the reply tag)', async () => {
    const a = new RocketClient({ transport: tb.transport });
    const b = new RocketClient({ transport: tb.transport });
    try {
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          firstValueFrom(
            (i % 2 ? a : b).send<number>('rpc', new RocketRecordBuilder([i, 100]).setTag('sum').build()),
          ),
        ),
      );
      expect(results).toEqual(Array.from({ length: 10 }, (_, i) => i + 100));
      expect(a.clientId).not.toBe(b.clientId);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("'topic:tag' works in send() and emit() as in RocketTemplate; a record's tag wins", async () => {
    const client = new RocketClient({ transport: tb.transport });
    try {
      expect(await firstValueFrom(client.send<number>('rpc:sum', [4, 5]))).toBe(9);
      const echoed = await firstValueFrom(
        client.send('rpc:sum', new RocketRecordBuilder('hi').setTag('echo').build()),
      );
      expect(echoed).toEqual({ payload: 'hi', tag: 'echo', region: undefined });
      seen.length = 0;
      const sent = await lastValueFrom(client.emit<SendResult>('events:shipped', { n: 3 }));
      expect(sent.topic).toBe('events');
      await waitFor(() => seen.length === 1, 'the tagged event');
      expect(seen[0]!.ctx.getTag()).toBe('shipped');
      expect(seen[0]!.ctx.getTopic()).toBe('events');
    } finally {
      await client.close();
    }
  });

  it('send() without a tag rejects at once with what to write instead (it used to wait for the reply timeout)', async () => {
    const client = new RocketClient({ transport: tb.transport, replyTimeoutMs: 600_000 });
    try {
      const error = await firstValueFrom(client.send('rpc', [1, 2])).catch((e: unknown) => e);
      expect(isRocketError(error) && error.code).toBe('INVALID_ARGUMENT');
      expect((error as Error).message).toContain('send to "rpc:<tag>"');
      const empty = await firstValueFrom(client.send('rpc:', [1, 2])).catch((e: unknown) => e);
      expect(isRocketError(empty) && empty.code).toBe('INVALID_ARGUMENT');
    } finally {
      await client.close();
    }
  });

  it('an error in the handler comes back as the error of send()', async () => {
    const client = new RocketClient({ transport: tb.transport });
    try {
      await expect(
        firstValueFrom(client.send('rpc', new RocketRecordBuilder({}).setTag('fail').build())),
      ).rejects.toEqual({ status: 'error', message: 'amount must be positive' });
    } finally {
      await client.close();
    }
  });

  it('no reply within replyTimeoutMs fails with RocketError TIMEOUT', async () => {
    const client = new RocketClient({ transport: tb.transport, replyTimeoutMs: 300 });
    try {
      const started = Date.now();
      const error = await firstValueFrom(client.send('silent:q', { q: 1 })).catch((e: unknown) => e);
      expect(isRocketError(error) && error.code).toBe('TIMEOUT');
      expect((error as Error).message).toMatch(
        /no reply to the request on "silent:q" within 300 ms .*: is a @RocketListener\("silent", "q", \{ reply: true \}\) running/,
      );
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await client.close();
    }
  });

  it('bounds waiting requests, and close() fails the ones still waiting', async () => {
    const client = new RocketClient({
      transport: tb.transport,
      maxPendingRequests: 1,
      replyTimeoutMs: 10_000,
    });
    const waiting = firstValueFrom(client.send('silent:q', { q: 1 })).catch((e: unknown) => e);
    const refused = await firstValueFrom(client.send('silent:q', { q: 2 })).catch((e: unknown) => e);
    expect(isRocketError(refused) && refused.code).toBe('BROKER_BUSY');
    await client.close();
    const closed = await waiting;
    expect(isRocketError(closed) && closed.code).toBe('CLOSED');
  });

  it('a reply topic that does not exist fails send() at once with a clear error', async () => {
    const client = new RocketClient({ transport: tb.transport, replyTopic: 'NoSuchReplyTopic' });
    try {
      const error = await firstValueFrom(
        client.send('rpc', new RocketRecordBuilder([1]).setTag('sum').build()),
      ).catch((e: unknown) => e);
      expect(isRocketError(error) && error.code).toBe('TOPIC_NOT_FOUND');
      expect((error as Error).message).toMatch(/reply topic "NoSuchReplyTopic" .* create it on the brokers/);
    } finally {
      await client.close();
    }
  });

  it('the server answers only on its own reply topic, whatever a request asks for', async () => {
    tb.broker.createTopic({ topic: 'OtherReplies', queueCount: 1 });
    const client = new RocketClient({
      transport: tb.transport,
      replyTopic: 'OtherReplies',
      replyTimeoutMs: 300,
    });
    try {
      const error = await firstValueFrom(
        client.send('rpc', new RocketRecordBuilder([1]).setTag('sum').build()),
      ).catch((e: unknown) => e);
      expect(isRocketError(error) && error.code).toBe('TIMEOUT');
      expect(await tb.transport.maxOffset(tb.broker.brokerName, { topic: 'OtherReplies', queueId: 0 })).toBe(
        0,
      );
    } finally {
      await client.close();
    }
  });

  it('works as a ClientsModule customClass, injected by name', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        ClientsModule.register([
          {
            name: 'ROCKET',
            customClass: RocketClient,
            options: { transport: tb.transport } as RocketClientOptions,
          },
        ]),
      ],
    }).compile();
    const client = moduleRef.get<ClientProxy>('ROCKET');
    try {
      expect(client).toBeInstanceOf(RocketClient);
      const sum = await firstValueFrom(
        client.send<number>('rpc', new RocketRecordBuilder([2, 3]).setTag('sum').build()),
      );
      expect(sum).toBe(5);
    } finally {
      await moduleRef.close(); // ClientsModule closes its clients at shutdown
    }
    await expect(client.connect()).rejects.toThrow(/closed/);
  });

  it('unwrap() before connect() throws; patterns must be topic names', async () => {
    const client = new RocketClient({ transport: tb.transport });
    expect(() => client.unwrap()).toThrow(/not connected/);
    await client.connect();
    expect(client.unwrap()).toBeDefined();
    const error = await lastValueFrom(client.emit({ cmd: 'x' }, {})).catch((e: unknown) => e);
    expect(isRocketError(error) && error.code).toBe('INVALID_ARGUMENT');
    await client.close();
  });

  it('rejects connection options that name no broker, or two ways to reach one', async () => {
    const none = new RocketClient({});
    await expect(none.connect()).rejects.toThrow(
      /exactly one of transport, nameServers, brokers, embedded, apache; got none/,
    );
    const two = new RocketClient({ transport: tb.transport, brokers: { 'broker-a': '127.0.0.1:1' } });
    await expect(two.connect()).rejects.toThrow(/got transport, brokers/);
  });
});
