import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { Broker } from '../../src/broker/broker';
import { BrokerServer } from '../../src/server/broker-server';
import { MemoryStore } from '../../src/store/memory-store';

// issue 15 #10: a slow push consumer holds what its cache bound says, not about twice that.
// The consumer runs in its own process (so the broker's store does not count) and measures its
// Buffer memory after a forced GC while it consumes a backlog far larger than its bound.

const REGISTER = path.join(__dirname, '..', 'support', 'swc-register.js');
const CHILD = path.join(__dirname, 'consumer-memory-child.ts');
const BODY_BYTES = 64 * 1024;
const QUEUES = 4;
const PER_QUEUE = 400;
const THRESHOLD_FOR_QUEUE = 100;
/** Pull batch of the consumer (its default): a queue under its bound may pull this many more. */
const PULL_BATCH = 32;

test('a slow consumer holds at most its cache bound of message bytes (plus one pull per queue and buffers)', async () => {
  const store = await MemoryStore.create({ maxBytes: 512 * 1024 * 1024, retentionIntervalMs: 0 });
  const broker = await Broker.start({ store });
  broker.createTopic({ topic: 'Big', queueCount: QUEUES });
  const server = await BrokerServer.start({ broker, host: '127.0.0.1', port: 0 });
  try {
    const body = Buffer.alloc(BODY_BYTES, 7);
    for (let queueId = 0; queueId < QUEUES; queueId++) {
      for (let i = 0; i < PER_QUEUE; i += 50) {
        await broker.send({
          producerGroup: 'P',
          topic: 'Big',
          queueId,
          messages: Array.from({ length: 50 }, () => ({ topic: 'Big', body })),
          bornTimestampMs: 1,
        });
      }
    }
    const total = QUEUES * PER_QUEUE;
    const child = spawn(
      process.execPath,
      [
        '--expose-gc',
        '-r',
        REGISTER,
        CHILD,
        `127.0.0.1:${server.address().port}`,
        String(total),
        String(THRESHOLD_FOR_QUEUE),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const { consumed, maxHeldBytes } = JSON.parse(stdout) as { consumed: number; maxHeldBytes: number };
    expect(consumed).toBe(total);
    // the cache bound: each queue stops pulling past THRESHOLD_FOR_QUEUE, after at most one more pull
    const boundBytes = QUEUES * (THRESHOLD_FOR_QUEUE + PULL_BATCH) * BODY_BYTES;
    // pull answers in flight, per queue one frame still being read from the socket and one being
    // decoded into messages, and the remoting buffers. (Before the fix of issue 15 #10 this
    // consumer held about 91 MB; this bound is about 60 MB.)
    const slackBytes = 2 * QUEUES * PULL_BATCH * BODY_BYTES + 8 * 1024 * 1024;
    expect(maxHeldBytes).toBeLessThanOrEqual(boundBytes + slackBytes);
  } finally {
    await server.close();
    await broker.close();
    await store.close();
  }
}, 120_000);
