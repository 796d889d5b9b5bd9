import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { Controller, Inject, Injectable, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, Payload } from '@nestjs/microservices';
import { MysqlInbox, MysqlOutbox } from '@rocketnest/core-broker/outbox';
import { createPool, type Pool } from 'mysql2/promise';
import {
  RocketConnection,
  RocketContext,
  RocketListener,
  RocketModule,
  RocketOutbox,
  RocketOutboxModule,
  RocketServer,
  inboxMessageOf,
} from '../src';
import { waitFor } from './support/wait';

/**
 * RocketOutboxModule on MariaDB/MySQL (the machine's server, a database of its own): an order and
 * its event commit together through the app's mysql2 connection; a handler charges through
 * MysqlInbox in its own transaction.
 */
const MYSQL_URL = process.env.ROCKETNEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const schema = `rn_nest_${randomBytes(5).toString('hex')}`;
let pool: Pool;
const inbox = new MysqlInbox({ consumer: 'billing', table: 'inbox' });

@Injectable()
class OrderService {
  constructor(@Inject(RocketOutbox) private readonly outbox: RocketOutbox) {}

  async place(id: string, fail = false): Promise<void> {
    const c = await pool.getConnection();
    try {
      await c.beginTransaction();
      await c.query('INSERT INTO orders (id) VALUES (?)', [id]);
      await this.outbox.add(c, {
        topic: 'orders',
        tag: 'created',
        messageGroup: id,
        body: JSON.stringify({ id }),
      });
      if (fail) throw new Error('the order write failed after the outbox row');
      await c.commit();
    } catch (error) {
      await c.rollback();
      throw error;
    } finally {
      c.release();
    }
  }
}

@Controller()
class Billing {
  @RocketListener('orders', 'created', { group: 'billing' })
  async charge(@Payload() order: { id: string }, @Ctx() ctx: RocketContext): Promise<void> {
    const c = await pool.getConnection();
    try {
      await c.beginTransaction();
      await inbox.process(c, inboxMessageOf(ctx), (tx) =>
        tx.query('INSERT INTO charges VALUES (?)', [order.id]),
      );
      await c.commit();
    } catch (error) {
      await c.rollback();
      throw error;
    } finally {
      c.release();
    }
  }
}

async function charges(): Promise<string[]> {
  const [rows] = await pool.query('SELECT order_id FROM charges');
  return (rows as Array<{ order_id: string }>).map((r) => r.order_id);
}

describe('RocketOutboxModule on MySQL/MariaDB', () => {
  let app: INestApplication;

  beforeAll(async () => {
    const admin = createPool({ uri: MYSQL_URL, connectionLimit: 1 });
    await admin.query(`CREATE DATABASE ${schema}`);
    await admin.end();
    pool = createPool({ uri: MYSQL_URL.replace(/\/[^/]*$/, `/${schema}`), connectionLimit: 8 });
    await pool.query('CREATE TABLE orders (id VARCHAR(32) PRIMARY KEY) ENGINE=InnoDB');
    await pool.query('CREATE TABLE charges (order_id VARCHAR(32)) ENGINE=InnoDB');
    await inbox.migrate(pool);

    @Module({
      imports: [
        RocketModule.forRoot({ embedded: { topics: [{ topic: 'orders', fifo: true }] } }),
        RocketOutboxModule.forRoot({
          outbox: new MysqlOutbox({ pool, table: 'outbox' }),
          migrate: true,
          relayOptions: { pollIntervalMs: 50 },
        }),
      ],
      providers: [OrderService],
      controllers: [Billing],
    })
    class MysqlOutboxAppModule {}

    app = await NestFactory.create(MysqlOutboxAppModule, { logger: false });
    app.connectMicroservice({
      strategy: new RocketServer({ transport: app.get(RocketConnection).transport }),
    });
    await app.startAllMicroservices();
    await app.init();
  });

  afterAll(async () => {
    await app?.close();
    await pool.query(`DROP DATABASE IF EXISTS ${schema}`);
    await pool.end();
  });

  test('a committed order is published and charged once; a rolled-back one never is', async () => {
    const orders = app.get(OrderService);
    await orders.place('o-1');
    await expect(orders.place('o-2', true)).rejects.toThrow(/order write failed/);
    let seen: string[] = [];
    await waitFor(async () => (seen = await charges()).length === 1, 'o-1 charged');
    expect(seen).toEqual(['o-1']);
    expect(await app.get(RocketOutbox).outbox.counts()).toEqual({ pending: 0, published: 1, parked: 0 });
  });

  test('add() on a connection outside a transaction is refused with NOT_IN_TRANSACTION', async () => {
    const c = await pool.getConnection();
    try {
      await expect(app.get(RocketOutbox).add(c, { topic: 'orders', body: 'x' })).rejects.toMatchObject({
        code: 'NOT_IN_TRANSACTION',
      });
    } finally {
      c.release();
    }
  });
});
