// A bare worker process, for keep-alive-cli.test.ts: a push consumer and nothing else (no HTTP
// server, no timer of its own), as a user's queue worker script is.
//
//   node -r swc-register worker-child.ts <broker host:port> <topic> <group>
//
// Prints READY once started and `GOT <body>` for each message; SIGTERM shuts it down and exits 0.
import { ConsumeResult, PushConsumer } from '../../src/client/push-consumer';
import { TcpTransport } from '../../src/client/tcp-transport';

async function main(): Promise<void> {
  const [address, topic, group] = process.argv.slice(2);
  if (!address || !topic || !group) throw new Error('usage: <broker> <topic> <group>');
  const transport = new TcpTransport({ brokers: { 'broker-a': address }, reconnectBackoffMinMs: 10 });
  const consumer = new PushConsumer({ group, transport, consumeFromWhere: 'FIRST_OFFSET' });
  consumer.subscribe(topic, '*');
  consumer.registerMessageListener((messages) => {
    for (const m of messages) process.stdout.write(`GOT ${m.body.toString()}\n`);
    return ConsumeResult.CONSUME_SUCCESS;
  });
  await consumer.start();
  process.stdout.write('READY\n');
  process.once('SIGTERM', () => {
    void consumer
      .shutdown()
      .then(() => transport.close())
      .then(() => process.stdout.write('STOPPED\n'));
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
