import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { BadRequestException, Controller, Injectable, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Ctx, Payload } from '@nestjs/microservices';
import { isRocketError, type DriverSendResult } from '@rocketnest/core-broker';
import { OUTBOX_ID_PROPERTY, SqliteOutbox } from '@rocketnest/core-broker/outbox';
import Database from 'better-sqlite3';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import {
  RocketClient,
  RocketContext,
  RocketListener,
  RocketModule,
  RocketOutbox,
  RocketOutboxModule,
  RocketRecordBuilder,
  RocketTemplate,
  RocketTransactionListener,
  RocketTransactionState,
  type RocketLocalTransactionListener,
  type RocketTransactionMessage,
} from '../src';
import { APACHE_START_TIMEOUT_MS, orderlyGroup, startApache, stopApache } from './support/apache-cluster';
import { startRocketMicroservice } from './support/nest-app';
import { waitFor } from './support/wait';

/**
 * The Nest transport on a real Apache RocketMQ 5 (tools/apache-rocketmq.sh, one cluster for the
 * file): `@RocketListener` handlers get what `RocketClient` emits, request/reply, retries, FIFO
 * listeners, dead-lettering at once, and broadcasting refused at `listen()` — only the `apache`
 * connection option differs from the embedded and TCP tests.
 */
const workDir = mkdtempSync(path.join(tmpdir(), 'nest-apache-'));
let apache: { proxy: string };

beforeAll(async () => {
  apache = await startApache(workDir, [
    'NestEvents:4',
    'NestOrders:4:fifo',
    'NestRpc:4',
    'NestPoison:2',
    'RocketNestReply:4',
    'NestTx:2:transaction',
    'NestOutbox:2',
    'NestOutboxSteps:2:fifo',
  ]);
  await orderlyGroup(workDir, 'nest-orders');
  await orderlyGroup(workDir, 'nest-outbox-steps');
}, APACHE_START_TIMEOUT_MS + 60_000);

afterAll(async () => {
  await stopApache(workDir);
  rmSync(workDir, { recursive: true, force: true });
}, 90_000);

const events: Array<{
  payload: unknown;
  tag: string | undefined;
  region: string | undefined;
  attempt: number;
}> = [];
const orders: Record<string, number[]> = {};
const poison: number[] = [];
const transactional: string[] = [];
const checked: string[] = [];
const pendingTx = new Set<string>();
const outboxed: Array<{ id: string; outboxId: string | undefined }> = [];
const outboxSteps: Record<string, number[]> = {};

@Injectable()
@RocketTransactionListener({ producerGroup: 'nest-tx-producer', topics: ['NestTx'] })
class TxListener implements RocketLocalTransactionListener {
  executeLocalTransaction(message: RocketTransactionMessage, arg: unknown): RocketTransactionState {
    if (arg === RocketTransactionState.UNKNOWN) pendingTx.add((message.payload as { id: string }).id);
    return arg as RocketTransactionState;
  }
  checkLocalTransaction(message: RocketTransactionMessage): RocketTransactionState {
    const id = (message.payload as { id: string }).id;
    checked.push(id);
    return pendingTx.has(id) ? RocketTransactionState.COMMIT : RocketTransactionState.ROLLBACK;
  }
}
let flakyFailed = false;

@Controller()
class ApacheController {
  @RocketListener('NestEvents', 'created || flaky', { group: 'nest-events', retryDelayMs: 1000 })
  onEvent(@Payload() payload: { n: number }, @Ctx() ctx: RocketContext) {
    if (ctx.getTag() === 'flaky' && !flakyFailed) {
      flakyFailed = true;
      throw new Error('first attempt fails');
    }
    events.push({
      payload,
      tag: ctx.getTag(),
      region: ctx.getProperties().region,
      attempt: ctx.getDeliveryAttempt(),
    });
  }

  @RocketListener('NestOrders', '*', { group: 'nest-orders', consumeMode: 'ORDERLY' })
  onOrder(@Payload() payload: { order: string; step: number }) {
    (orders[payload.order] ??= []).push(payload.step);
  }

  @RocketListener('NestPoison', '*', { group: 'nest-poison' })
  onPoison(@Payload() payload: { n: number }) {
    poison.push(payload.n);
    throw new BadRequestException('never valid');
  }

  @RocketListener('NestTx', '*', { group: 'nest-tx' })
  onTx(@Payload() payload: { id: string }) {
    transactional.push(payload.id);
  }

  @RocketListener('NestOutbox', '*', { group: 'nest-outbox' })
  onOutboxed(@Payload() payload: { id: string }, @Ctx() ctx: RocketContext) {
    outboxed.push({ id: payload.id, outboxId: ctx.getProperties()[OUTBOX_ID_PROPERTY] });
  }

  @RocketListener('NestOutboxSteps', '*', { group: 'nest-outbox-steps', consumeMode: 'ORDERLY' })
  onOutboxStep(@Payload() payload: { order: string; step: number }) {
    (outboxSteps[payload.order] ??= []).push(payload.step);
  }

  @RocketListener('NestRpc', 'sum', { group: 'nest-rpc', reply: true })
  sum(@Payload() numbers: number[]) {
    return numbers.reduce((a, b) => a + b, 0);
  }
}

describe('RocketServer and RocketClient on Apache RocketMQ', () => {
  let app: Awaited<ReturnType<typeof startRocketMicroservice>>['app'];
  let client: RocketClient;

  beforeAll(async () => {
    ({ app } = await startRocketMicroservice([ApacheController], { apache: { endpoints: apache.proxy } }));
    client = new RocketClient({ apache: { endpoints: apache.proxy } });
  }, 120_000);

  afterAll(async () => {
    await client?.close();
    await app?.close();
  }, 60_000);

  it('a @RocketListener receives what RocketClient emits: payload, tag, properties; a failure is retried', async () => {
    const sent = await lastValueFrom(
      client.emit<DriverSendResult>(
        'NestEvents',
        new RocketRecordBuilder({ n: 1 }).setTag('created').setProperties({ region: 'eu' }).build(),
      ),
    );
    expect(sent.topic).toBe('NestEvents');
    await lastValueFrom(client.emit('NestEvents', new RocketRecordBuilder({ n: 2 }).setTag('flaky').build()));
    await lastValueFrom(
      client.emit('NestEvents', new RocketRecordBuilder({ n: 3 }).setTag('ignored').build()),
    );
    await waitFor(() => events.length >= 2, 'both events', 90_000);
    expect(events.sort((a, b) => (a.payload as { n: number }).n - (b.payload as { n: number }).n)).toEqual([
      { payload: { n: 1 }, tag: 'created', region: 'eu', attempt: 1 },
      { payload: { n: 2 }, tag: 'flaky', region: undefined, attempt: 2 },
    ]);
  }, 120_000);

  it('request/reply: RocketClient.send gets the reply listener answer', async () => {
    await expect(firstValueFrom(client.send<number>('NestRpc:sum', [1, 2, 3]))).resolves.toBe(6);
  }, 60_000);

  it('an ORDERLY listener sees each message group in send order', async () => {
    for (let step = 0; step < 4; step++) {
      for (const order of ['o1', 'o2']) {
        await lastValueFrom(
          client.emit('NestOrders', new RocketRecordBuilder({ order, step }).setMessageGroup(order).build()),
        );
      }
    }
    await waitFor(() => Object.values(orders).flat().length >= 8, 'the 8 order steps', 90_000);
    expect(orders).toEqual({ o1: [0, 1, 2, 3], o2: [0, 1, 2, 3] });
  }, 120_000);

  it('a BadRequestException dead-letters at once, without retries', async () => {
    const sent = await lastValueFrom(client.emit<DriverSendResult>('NestPoison', { n: 7 }));
    await waitFor(() => poison.length >= 1, 'the poison message', 60_000);
    // read the dead-letter queue through a second server: the message is there after one attempt
    const dead: string[] = [];
    @Controller()
    class DeadLetterReader {
      @RocketListener('%DLQ%nest-poison', '*', { group: 'nest-dlq-reader', raw: true })
      onDead(@Ctx() ctx: RocketContext) {
        dead.push(ctx.getMessageId());
      }
    }
    // the dead-letter topic is created by the first dead letter, right after the handler failed
    let reader: Awaited<ReturnType<typeof startRocketMicroservice>> | undefined;
    for (let attempt = 1; !reader; attempt++) {
      try {
        reader = await startRocketMicroservice([DeadLetterReader], { apache: { endpoints: apache.proxy } });
      } catch (error) {
        if (!isRocketError(error, 'TOPIC_NOT_FOUND') || attempt >= 60) throw error;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
    try {
      await waitFor(() => dead.includes(sent.msgId), 'the dead-lettered message', 60_000);
      expect(poison).toEqual([7]);
    } finally {
      await reader.app.close();
    }
  }, 120_000);

  it('RocketModule.forRoot({ apache }): RocketTemplate sends, and its transactions commit, roll back and are checked', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [RocketModule.forRoot({ apache: { endpoints: apache.proxy } })],
      providers: [TxListener],
    }).compile();
    const nest: INestApplication = moduleRef.createNestApplication({ logger: false });
    await nest.init();
    try {
      const template = nest.get(RocketTemplate);
      const sent = await template.send('NestEvents:created', { n: 10 });
      expect(sent.topic).toBe('NestEvents');
      await waitFor(
        () => events.some((e) => (e.payload as { n: number }).n === 10),
        'the template event',
        60_000,
      );
      const results = [
        await template.sendInTransaction('NestTx', { id: 'commit' }, RocketTransactionState.COMMIT),
        await template.sendInTransaction('NestTx', { id: 'rollback' }, RocketTransactionState.ROLLBACK),
        await template.sendInTransaction('NestTx', { id: 'checked' }, RocketTransactionState.UNKNOWN),
      ];
      expect(results.map((r) => r.resolution)).toEqual(['COMMIT', 'ROLLBACK', 'UNKNOWN']);
      await waitFor(() => transactional.length >= 2, 'the committed and the checked transaction', 90_000);
      expect(transactional.sort()).toEqual(['checked', 'commit']);
      expect(checked).toContain('checked');
    } finally {
      await nest.close();
    }
  }, 150_000);

  it('RocketOutboxModule on RocketModule.forRoot({ apache }): committed rows reach the listeners, message groups in order, rolled-back rows never', async () => {
    const db = new Database(':memory:');
    const table = new SqliteOutbox({ db });
    const moduleRef = await Test.createTestingModule({
      imports: [
        RocketModule.forRoot({ apache: { endpoints: apache.proxy } }),
        RocketOutboxModule.forRoot({
          outbox: table,
          migrate: true,
          relayOptions: { pollIntervalMs: 50 },
        }),
      ],
    }).compile();
    const nest: INestApplication = moduleRef.createNestApplication({ logger: false });
    await nest.init();
    try {
      const outbox = nest.get(RocketOutbox);
      const id = db.transaction(() => {
        for (let step = 0; step < 3; step++)
          for (const order of ['x1', 'x2'])
            outbox.add(db, {
              topic: 'NestOutboxSteps',
              body: JSON.stringify({ order, step }),
              messageGroup: order,
            });
        return outbox.add(db, { topic: 'NestOutbox', body: JSON.stringify({ id: 'committed' }) });
      })();
      expect(() =>
        db.transaction(() => {
          outbox.add(db, { topic: 'NestOutbox', body: JSON.stringify({ id: 'rolled-back' }) });
          throw new Error('rollback');
        })(),
      ).toThrow('rollback');
      await waitFor(
        () => outboxed.length >= 1 && Object.values(outboxSteps).flat().length >= 6,
        'the outbox rows',
        90_000,
      );
      await new Promise((resolve) => setTimeout(resolve, 2000)); // a stray row would show by now
      expect(outboxed).toEqual([{ id: 'committed', outboxId: id }]);
      expect(outboxSteps).toEqual({ x1: [0, 1, 2], x2: [0, 1, 2] });
      // the relay marked what it published; the rolled-back row was never written
      await waitFor(() => table.counts().published === 7, 'the rows marked published', 30_000);
      expect(table.counts()).toEqual({ pending: 0, published: 7, parked: 0 });
    } finally {
      await nest.close();
      db.close();
    }
  }, 150_000);

  it('a BROADCASTING listener fails listen() with UNSUPPORTED (Apache has no gRPC broadcasting)', async () => {
    @Controller()
    class Broadcast {
      @RocketListener('NestEvents', '*', { group: 'nest-broadcast', messageModel: 'BROADCASTING' })
      on() {}
    }
    const failure = await startRocketMicroservice([Broadcast], { apache: { endpoints: apache.proxy } }).then(
      async ({ app: started }) => {
        await started.close();
        return undefined;
      },
      (error: unknown) => error,
    );
    expect(isRocketError(failure, 'UNSUPPORTED')).toBe(true);
    expect((failure as Error).message).toMatch(/broadcasting/);
  }, 60_000);
});
