import { Producer, PushConsumer, ConsumeResult, isRocketError } from '@rocketnest/core-broker';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { RocketConnection } from '../src';
import { startTestBroker } from './support/embedded-broker';
import { waitFor } from './support/wait';

describe('RocketConnection', () => {
  it('embedded with a dir runs a durable FileStore broker: topics and messages survive a restart', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rocketnest-conn-'));
    try {
      const first = await RocketConnection.open({
        embedded: { dir, topics: [{ topic: 'durable', queueCount: 2 }] },
      });
      expect(first.broker!.getTopic('RocketNestReply')).toBeDefined();
      const producer = new Producer({ group: 'conn-producer', transport: first.transport });
      await producer.start();
      await producer.send({ topic: 'durable', body: 'kept' });
      await producer.shutdown();
      await first.close();
      await first.close(); // idempotent

      const second = await RocketConnection.open({ embedded: { dir } });
      try {
        expect(second.broker!.getTopic('durable')!.readQueueCount).toBe(2);
        const bodies: string[] = [];
        const consumer = new PushConsumer({
          group: 'conn-consumer',
          transport: second.transport,
          consumeFromWhere: 'FIRST_OFFSET',
        });
        consumer.subscribe('durable', '*');
        consumer.registerMessageListener(async (messages) => {
          bodies.push(...messages.map((m) => m.body.toString()));
          return ConsumeResult.CONSUME_SUCCESS;
        });
        await consumer.start();
        await waitFor(() => bodies.length === 1, 'the message stored before the restart');
        expect(bodies).toEqual(['kept']);
        await consumer.shutdown();
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a transport handed in is used and left open', async () => {
    const tb = await startTestBroker(['given']);
    try {
      const connection = await RocketConnection.open({ transport: tb.transport });
      expect(connection.transport).toBe(tb.transport);
      expect(connection.broker).toBeUndefined();
      await connection.close();
      const producer = new Producer({ group: 'after-close', transport: tb.transport });
      await producer.start();
      await expect(producer.send({ topic: 'given', body: 'still open' })).resolves.toMatchObject({
        topic: 'given',
      });
      await producer.shutdown();
    } finally {
      await tb.close();
    }
  });

  it('needs exactly one way to reach brokers, and checks TCP addresses', async () => {
    const none = await RocketConnection.open({}).catch((e: unknown) => e);
    expect(isRocketError(none) && none.code).toBe('INVALID_OPTION');
    await expect(RocketConnection.open({ embedded: {}, nameServers: ['127.0.0.1:9876'] })).rejects.toThrow(
      /got nameServers, embedded/,
    );
    await expect(RocketConnection.open({ brokers: { 'broker-a': 'no-port' } })).rejects.toThrow();
    const tcp = await RocketConnection.open({
      brokers: { 'broker-a': '127.0.0.1:1' },
      tcp: { connectTimeoutMs: 200 },
    });
    await tcp.close();
  });
});
