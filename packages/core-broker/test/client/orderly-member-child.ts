// One member of an orderly push consumer group, as its own process, for orderly-restarts.test.ts.
//
//   node -r swc-register orderly-member-child.ts <broker host:port> <member name> <topic> <group>
//
// Reports on stdout, one line each (pipes are written synchronously on Linux, so a line is out
// before the listener goes on, and none is lost when the process is killed):
//   READY <member>                                          once started
//   S <member> <fifoGroup> <seq> <queueId> <queueOffset> <t> when a listener takes a message
//   E <member> <fifoGroup> <seq> <queueId> <queueOffset> <t> when it returns CONSUME_SUCCESS
//   EV <member> <event name> <json>                           what the consumer reports (diagnostics)
// <t> is process.hrtime.bigint(): CLOCK_MONOTONIC, one clock for every process of the machine, so
// the test orders events of different members by it. SIGTERM shuts the consumer down.
import { ConsumeResult, PushConsumer } from '../../src/client/push-consumer';
import { TcpTransport } from '../../src/client/tcp-transport';

/** Time a listener spends on a message: long enough for a kill or a rebalance to find it inside. */
const WORK_MS = 15;

async function main(): Promise<void> {
  const [address, member, topic, group] = process.argv.slice(2);
  if (!address || !member || !topic || !group) throw new Error('usage: <broker> <member> <topic> <group>');
  const transport = new TcpTransport({ brokers: { 'broker-a': address }, reconnectBackoffMinMs: 10 });
  const consumer = new PushConsumer({
    group,
    clientId: `${member}@${process.pid}`,
    transport,
    consumeFromWhere: 'FIRST_OFFSET',
  });
  consumer.subscribe(topic, '*');
  const line = (
    kind: string,
    m: { properties: Record<string, string>; queueId: number; queueOffset: number },
  ) =>
    process.stdout.write(
      `${kind} ${member} ${m.properties.fifoGroup} ${m.properties.seq} ${m.queueId} ${m.queueOffset} ${process.hrtime.bigint()}\n`,
    );
  consumer.registerMessageListener(
    async (messages) => {
      for (const m of messages) {
        line('S', m);
        await new Promise((resolve) => setTimeout(resolve, WORK_MS));
        line('E', m);
      }
      return ConsumeResult.CONSUME_SUCCESS;
    },
    { orderly: true },
  );
  // what the consumer reports, for a failing test's message
  for (const name of [
    'consumer.rebalance',
    'consumer.error',
    'consumer.pull.error',
    'consumer.offset.illegal',
    'consumer.offset.reset',
    'consumer.dropped',
    'consumer.listener.error',
    'consumer.flow-control',
  ] as const)
    consumer.on(name, (e: object) =>
      process.stdout.write(
        `EV ${member} ${name} ${JSON.stringify(e, (k, v: unknown) => (v instanceof Error ? `${(v as Error & { code?: string }).code ?? ''} ${v.message}` : v))}\n`,
      ),
    );
  await consumer.start();
  process.stdout.write(`READY ${member}\n`);
  // nothing else keeps this process alive while its broker restarts: the started consumer does
  process.once('SIGTERM', () => {
    void consumer
      .shutdown()
      .then(() => transport.close())
      .then(() => process.exit(0));
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
