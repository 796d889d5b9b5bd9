import 'reflect-metadata';
import { Controller, Inject, Injectable, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, Payload } from '@nestjs/microservices';
import { SqliteInbox, SqliteOutbox } from '@rocketnest/core-broker/outbox';
import Database from 'better-sqlite3';
import * as path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import {
  RocketConnection,
  RocketContext,
  RocketListener,
  RocketModule,
  RocketOutbox,
  RocketOutboxModule,
  RocketServer,
  RocketTemplate,
  inboxMessageOf,
} from '../src';
import { waitFor } from './support/wait';

const dir = mkdtempSync(path.join(tmpdir(), 'rocketnest-nest-outbox-'));
const file = path.join(dir, 'app.db');
/** The app's own connection; the relay gets another one (better-sqlite3 is synchronous). */
const db = new Database(file);
const relayDb = new Database(file, { timeout: 100 });
const inbox = new SqliteInbox({ consumer: 'billing' });
db.exec('CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY)');
db.exec('CREATE TABLE IF NOT EXISTS charges (order_id TEXT)');
inbox.migrate(db);

@Injectable()
class OrderService {
  constructor(@Inject(RocketOutbox) private readonly outbox: RocketOutbox) {}

  place(id: string, fail = false): void {
    db.transaction(() => {
      db.prepare('INSERT INTO orders (id) VALUES (?)').run(id);
      this.outbox.add(db, {
        topic: 'orders',
        tag: 'created',
        messageGroup: id,
        body: JSON.stringify({ id }),
      });
      if (fail) throw new Error('the order write failed after the outbox row');
    })();
  }
}

const deliveries: Array<{ id: string; outboxId: string | undefined }> = [];

@Controller()
class Billing {
  @RocketListener('orders', 'created', { group: 'billing' })
  charge(@Payload() order: { id: string }, @Ctx() ctx: RocketContext): void {
    deliveries.push({ id: order.id, outboxId: ctx.getProperties().OUTBOX_ID });
    db.transaction(() =>
      inbox.process(db, inboxMessageOf(ctx), (tx) => {
        tx.prepare('INSERT INTO charges (order_id) VALUES (?)').run(order.id);
      }),
    )();
  }
}

@Module({
  imports: [
    // the outbox rows carry a message group, which the broker takes on a FIFO topic only
    RocketModule.forRoot({ embedded: { topics: [{ topic: 'orders', fifo: true }] } }),
    RocketOutboxModule.forRoot({
      outbox: new SqliteOutbox({ db: relayDb }),
      migrate: true,
      relayOptions: { pollIntervalMs: 20 },
    }),
  ],
  providers: [OrderService],
  controllers: [Billing],
})
class OutboxAppModule {}

const charges = (): string[] =>
  (db.prepare('SELECT order_id FROM charges ORDER BY rowid').all() as Array<{ order_id: string }>).map(
    (r) => r.order_id,
  );

describe('RocketOutboxModule', () => {
  let app: INestApplication;

  beforeAll(async () => {
    app = await NestFactory.create(OutboxAppModule, { logger: false });
    app.connectMicroservice({
      strategy: new RocketServer({ transport: app.get(RocketConnection).transport }),
    });
    await app.startAllMicroservices();
    await app.init();
  });

  afterAll(async () => {
    await app.close();
    db.close();
    relayDb.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a committed order is published by the relay and charged once; a rolled-back one never is', async () => {
    const orders = app.get(OrderService);
    orders.place('o-1');
    expect(() => orders.place('o-2', true)).toThrow(/order write failed/);
    await waitFor(() => charges().length === 1, 'o-1 charged');
    expect(charges()).toEqual(['o-1']);
    expect(db.prepare('SELECT count(*) AS n FROM orders').get()).toEqual({ n: 1 });
    expect(app.get(RocketOutbox).relay).toBeDefined();
  });

  test('a redelivered copy (same outbox row id) is absorbed by the inbox', async () => {
    const first = deliveries.find((d) => d.id === 'o-1')!;
    expect(first.outboxId).toMatch(/.+/);
    // what a relay killed between send and mark does: send the row again, same OUTBOX_ID
    await app
      .get(RocketTemplate)
      .sendOrderly('orders:created', { id: 'o-1' }, 'o-1', { properties: { OUTBOX_ID: first.outboxId! } });
    await waitFor(() => deliveries.length === 2, 'the duplicate delivered');
    expect(charges()).toEqual(['o-1']);
  });

  test('add() outside a transaction is refused with NOT_IN_TRANSACTION', () => {
    expect(() => app.get(RocketOutbox).add(db, { topic: 'orders', body: 'x' })).toThrow(
      expect.objectContaining({ code: 'NOT_IN_TRANSACTION' }),
    );
  });
});
