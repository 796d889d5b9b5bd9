import 'reflect-metadata';
import { Controller, Injectable, Module, type INestApplication } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { isRocketError, RocketAdmin } from '@rocketnest/core-broker';
import { firstValueFrom } from 'rxjs';
import {
  RocketClient,
  RocketContext,
  RocketDiscard,
  RocketListener,
  RocketModule,
  RocketRecordBuilder,
  RocketServer,
  RocketTemplate,
  RocketTransactionListener,
  RocketTransactionState,
  type RocketLocalTransactionListener,
  type RocketTransactionMessage,
} from '../src';
import { spawnBroker, type BrokerProcess } from './support/broker-process';
import { CapturingLogger } from './support/nest-app';
import { sleep, waitFor } from './support/wait';

// One standalone broker process for the file, reached over TCP by every client below.
let broker: BrokerProcess;
const TOPICS = ['RocketNestReply', 't-orders', 't-audit', 't-fifo', 't-retries', 't-rpc', 't-silent', 't-tx'];

const seen: Record<string, unknown[]> = {};
function record(key: string, value: unknown): void {
  (seen[key] ??= []).push(value);
}

@Controller()
class TcpController {
  @RocketListener('t-orders', 'created || paid', { group: 'tcp-tags' })
  onCreated(@Payload() payload: unknown, @Ctx() ctx: RocketContext) {
    record('tags', { payload, tag: ctx.getTag() });
  }

  @RocketListener('t-orders', { group: 'tcp-sql', sql: "region = 'eu'" })
  onEu(@Payload() payload: unknown) {
    record('sql', payload);
  }

  @RocketListener('t-audit', '*', { group: 'tcp-broadcast', messageModel: 'BROADCASTING' })
  onAudit(@Payload() payload: unknown) {
    record('broadcast', payload);
  }

  @RocketListener('t-fifo', '*', { group: 'tcp-fifo', consumeMode: 'ORDERLY', concurrency: 4 })
  async onFifo(@Payload() payload: { group: string; seq: number }) {
    await sleep(Math.floor(Math.random() * 3));
    record(`fifo-${payload.group}`, payload.seq);
  }

  @RocketListener('t-retries', 'fail', { group: 'tcp-retry', maxReconsumeTimes: 1, retryDelayMs: 50 })
  onFail(@Ctx() ctx: RocketContext) {
    record('retry', ctx.getReconsumeTimes());
    throw new Error('still failing');
  }

  @RocketListener('t-retries', 'discard', { group: 'tcp-retry', retryDelayMs: 50 })
  onDiscard() {
    record('discard', 1);
    throw new RocketDiscard('poison');
  }

  @RocketListener('t-rpc', 'double', { group: 'tcp-rpc', reply: true })
  double(@Payload() n: number) {
    return n * 2;
  }

  @RocketListener('t-tx', '*', { group: 'tcp-tx' })
  onTx(@Payload() payload: { id: string }) {
    record('tx', payload.id);
  }
}

const unknownToCommit = new Set<string>();

@Injectable()
@RocketTransactionListener({ producerGroup: 'tcp-order-tx', topics: ['t-tx'] })
class TcpTransactions implements RocketLocalTransactionListener {
  executeLocalTransaction(message: RocketTransactionMessage, arg: unknown): RocketTransactionState {
    if (arg === 'UNKNOWN') unknownToCommit.add(message.transactionId);
    return arg as RocketTransactionState;
  }
  checkLocalTransaction(message: RocketTransactionMessage): RocketTransactionState {
    record('checks', message.transactionId);
    return unknownToCommit.has(message.transactionId) ? 'COMMIT' : 'ROLLBACK';
  }
}

let app: INestApplication;
let second: Awaited<ReturnType<typeof startSecondInstance>>;
let server: RocketServer;
const logs = new CapturingLogger();

/** A second microservice instance with the broadcasting listener only. */
async function startSecondInstance() {
  @Controller()
  class SecondAudit {
    @RocketListener('t-audit', '*', { group: 'tcp-broadcast', messageModel: 'BROADCASTING' })
    onAudit(@Payload() payload: unknown) {
      record('broadcast-2', payload);
    }
  }
  const moduleRef = await Test.createTestingModule({ controllers: [SecondAudit] }).compile();
  const micro = moduleRef.createNestMicroservice({
    strategy: new RocketServer({ brokers: broker.brokers, consumer: { consumeFromWhere: 'FIRST_OFFSET' } }),
    logger: logs, // Nest's logger is process-wide: `false` here would silence the first app too
  });
  await micro.listen();
  return micro;
}

beforeAll(async () => {
  broker = await spawnBroker(TOPICS);
  // orderly sends carry a message group, which the broker takes on a FIFO topic only; --topics makes normal ones
  const admin = new RocketAdmin({ brokers: broker.brokers });
  try {
    await admin.updateTopic({ topic: 't-fifo', fifo: true });
  } finally {
    await admin.close();
  }
  @Module({
    imports: [RocketModule.forRoot({ brokers: broker.brokers })],
    controllers: [TcpController],
    providers: [TcpTransactions],
  })
  class AppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  app = moduleRef.createNestApplication({ logger: logs });
  // the server makes and owns its own TcpTransport
  server = new RocketServer({
    brokers: broker.brokers,
    consumer: { consumeFromWhere: 'FIRST_OFFSET', suspendTimeoutMs: 1000 },
  });
  app.connectMicroservice({ strategy: server });
  await app.startAllMicroservices();
  await app.init();
  second = await startSecondInstance();
}, 30_000);

afterAll(async () => {
  await second?.close();
  await app?.close();
  const code = await broker?.stop();
  expect(code).toBe(0);
}, 30_000);

describe('over TCP to a standalone broker process', () => {
  it('tag and SQL listeners each get their messages', async () => {
    const template = app.get(RocketTemplate);
    await template.send('t-orders:created', { id: 1 }, { properties: { region: 'eu' } });
    await template.send('t-orders:shipped', { id: 2 }, { properties: { region: 'us' } });
    await template.send('t-orders:paid', { id: 3 }, { properties: { region: 'us' } });
    await waitFor(() => seen.tags?.length === 2 && seen.sql?.length === 1, 'tag and SQL deliveries');
    expect(seen.tags).toEqual(
      expect.arrayContaining([
        { payload: { id: 1 }, tag: 'created' },
        { payload: { id: 3 }, tag: 'paid' },
      ]),
    );
    expect(seen.sql).toEqual([{ id: 1 }]);
  });

  it('broadcasting reaches both instances', async () => {
    const template = app.get(RocketTemplate);
    await template.send('t-audit', { a: 1 });
    await template.send('t-audit', { a: 2 });
    await waitFor(() => seen.broadcast?.length === 2 && seen['broadcast-2']?.length === 2, 'both instances');
  });

  it('orderly handling keeps each message group in order', async () => {
    const template = app.get(RocketTemplate);
    for (let seq = 0; seq < 8; seq++) {
      for (const group of ['x', 'y', 'z']) await template.sendOrderly('t-fifo', { group, seq }, group);
    }
    await waitFor(
      () => ['x', 'y', 'z'].every((g) => seen[`fifo-${g}`]?.length === 8),
      'all ordered messages',
    );
    for (const g of ['x', 'y', 'z']) expect(seen[`fifo-${g}`]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('retries then dead-letters; a discard is not retried', async () => {
    const dead: string[] = [];
    server.on('consumer.dead-lettered', ({ msgId }) => dead.push(msgId));
    const template = app.get(RocketTemplate);
    const failed = await template.send('t-retries:fail', {});
    await template.send('t-retries:discard', {});
    await waitFor(() => dead.length === 1, 'the dead-letter event', 10_000);
    expect(dead).toHaveLength(1); // the id of the retried copy that went to the DLQ
    expect(seen.retry).toEqual([0, 1]);
    await sleep(300);
    expect(seen.discard).toEqual([1]);
    expect(logs.has('error', `msgId=${failed.msgId} topic=t-retries tag=fail group=tcp-retry`)).toBe(true);
  });

  it('request-reply, and a timeout when nobody answers', async () => {
    // The answered request gets a generous timeout so a loaded machine cannot fail it; only the
    // silent topic's request is meant to time out.
    const client = new RocketClient({ brokers: broker.brokers, replyTimeoutMs: 30_000 });
    const impatient = new RocketClient({ brokers: broker.brokers, replyTimeoutMs: 500 });
    try {
      const doubled = await firstValueFrom(
        client.send<number>('t-rpc', new RocketRecordBuilder(21).setTag('double').build()),
      );
      expect(doubled).toBe(42);
      const error = await firstValueFrom(impatient.send('t-silent:q', 1)).catch((e: unknown) => e);
      expect(isRocketError(error) && error.code).toBe('TIMEOUT');
    } finally {
      await client.close();
      await impatient.close();
    }
  });

  it('transactions: commit, rollback, and a check-back over the connection', async () => {
    const template = app.get(RocketTemplate);
    await template.sendInTransaction('t-tx', { id: 'commit' }, 'COMMIT');
    await template.sendInTransaction('t-tx', { id: 'rollback' }, 'ROLLBACK');
    const unknown = await template.sendInTransaction('t-tx', { id: 'checked' }, 'UNKNOWN');
    await waitFor(() => seen.tx?.includes('commit') === true, 'the committed message');
    // the CLI broker checks unresolved transactions back after 6 s (RocketMQ transactionTimeOut)
    await waitFor(
      () => seen.tx?.includes('checked') === true,
      'the message committed by its check-back',
      15_000,
    );
    expect(seen.checks).toContain(unknown.transactionId);
    expect(seen.tx).not.toContain('rollback');
  }, 20_000);
});
