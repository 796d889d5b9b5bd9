// Child process of consumer-memory.test.ts: a slow push consumer over TCP that reports the most
// Buffer memory it held (after a forced GC) while it consumed. Run with --expose-gc:
//   node --expose-gc -r ../support/swc-register.js consumer-memory-child.ts <broker address> <count> <threshold>
import { ConsumeResult, PushConsumer } from '../../src/client/push-consumer';
import { TcpTransport } from '../../src/client/tcp-transport';

const [address, countText, thresholdText] = process.argv.slice(2);
const count = Number(countText);
const gc = (globalThis as { gc?: () => void }).gc!;

async function main(): Promise<void> {
  const transport = new TcpTransport({ brokers: { 'broker-a': address! } });
  const consumer = new PushConsumer({
    group: 'MemoryG',
    transport,
    consumeFromWhere: 'FIRST_OFFSET',
    consumeConcurrency: 1,
    pullThresholdForQueue: Number(thresholdText),
  });
  let consumed = 0;
  let maxHeldBytes = 0;
  const done = new Promise<void>((resolve) => {
    consumer.subscribe('Big', '*').registerMessageListener(async () => {
      // slow: the cache fills up to its bound while the listener works
      await new Promise((r) => setTimeout(r, 1));
      consumed++;
      if (consumed % 50 === 0) {
        gc();
        maxHeldBytes = Math.max(maxHeldBytes, process.memoryUsage().arrayBuffers);
      }
      if (consumed === count) resolve();
      return ConsumeResult.CONSUME_SUCCESS;
    });
  });
  await consumer.start();
  await done;
  await consumer.shutdown();
  await transport.close();
  process.stdout.write(`${JSON.stringify({ consumed, maxHeldBytes })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
