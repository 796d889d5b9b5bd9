'use strict';
// Instructions per message of the RocketMQ 5 gRPC endpoint, in one process and without the file
// store's timers (which, under valgrind's slowdown, run ~100× more often per message and make a
// per-message count drift by ±10 % from run to run): a Broker on a MemoryStore, the GrpcServer
// on loopback, and a bare @grpc/grpc-js client of MessagingService. Each round: N SendMessage
// calls (1 KiB, 8 outstanding), then ReceiveMessage batches of 32 with one AckMessage per message,
// as the official clients do. The counts include the client's grpc-js work, the same in every
// version compared, so a difference between two builds is the server's.
//
//   valgrind --tool=callgrind --smc-check=all-non-file node --single-threaded \
//     bench/grpc-instructions.js [N] [dist dir]
//
// Run at two N and take (I2 − I1) / (N2 − N1): start-up and JIT warm-up cancel out.

const path = require('node:path');
const grpc = require(
  require.resolve('@grpc/grpc-js', { paths: [path.join(__dirname, '../packages/core-broker')] }),
);

const N = Number(process.argv[2] ?? 1000);
const DIST = process.argv[3] ?? path.join(__dirname, '../packages/core-broker/dist');
const { Broker } = require(path.join(DIST, 'broker/broker.js'));
const { MemoryStore } = require(path.join(DIST, 'store/memory-store.js'));
const { GrpcServer } = require(path.join(DIST, 'server/grpc-server.js'));
const { METHODS, SERVICE } = require(path.join(DIST, 'rocketmq5/codec.js'));

const TOPIC = 'Instr';
const GROUP = 'InstrGroup';

async function main() {
  const store = await MemoryStore.create({ maxBytes: 256 * 1024 * 1024, retentionIntervalMs: 0 });
  const broker = await Broker.start({ store, brokerName: 'broker-a' });
  broker.createTopic({ topic: TOPIC, queueCount: 8 });
  const server = await GrpcServer.start({ broker, port: 0 });
  const client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  const metadata = () => {
    const m = new grpc.Metadata();
    m.set('x-mq-client-id', 'instr@1');
    return m;
  };
  const unary = (name, request) =>
    new Promise((resolve, reject) =>
      client.makeUnaryRequest(
        `/${SERVICE}/${name}`,
        (v) => Buffer.from(METHODS[name].request.encode(v)),
        (b) => METHODS[name].response.decode(b),
        request,
        metadata(),
        (error, response) => (error ? reject(error) : resolve(response)),
      ),
    );
  const receive = (request) =>
    new Promise((resolve, reject) => {
      const frames = [];
      const call = client.makeServerStreamRequest(
        `/${SERVICE}/ReceiveMessage`,
        (v) => Buffer.from(METHODS.ReceiveMessage.request.encode(v)),
        (b) => METHODS.ReceiveMessage.response.decode(b),
        request,
        metadata(),
      );
      call.on('data', (f) => frames.push(f));
      call.on('error', reject);
      call.on('end', () => resolve(frames));
    });

  const body = Buffer.alloc(1024, 1);
  let id = 0;
  const send = async () => {
    const response = await unary('SendMessage', {
      messages: [
        {
          topic: { name: TOPIC },
          userProperties: {},
          systemProperties: {
            tag: 'instr',
            messageId: `01AABBCCDDEEFF0001${(++id).toString(16).toUpperCase().padStart(16, '0')}`,
            messageType: 1,
            bornTimestamp: { seconds: Math.floor(Date.now() / 1000), nanos: 0 },
            bornHost: '127.0.0.1',
          },
          body,
        },
      ],
    });
    if (response.status.code !== 20000) throw new Error(`send: ${JSON.stringify(response.status)}`);
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < N) {
        next++;
        await send();
      }
    }),
  );
  let got = 0;
  for (let round = 0; got < N && round < N; round++) {
    const frames = await receive({
      group: { name: GROUP },
      messageQueue: { topic: { name: TOPIC }, id: -1 },
      filterExpression: { type: 1, expression: '*' },
      batchSize: 32,
      invisibleDuration: { seconds: 30, nanos: 0 },
      autoRenew: false,
      longPollingTimeout: { seconds: 1, nanos: 0 },
    });
    const messages = frames.filter((f) => f.message).map((f) => f.message);
    await Promise.all(
      messages.map(async (m) => {
        const r = await unary('AckMessage', {
          group: { name: GROUP },
          topic: { name: TOPIC },
          entries: [
            { messageId: m.systemProperties.messageId, receiptHandle: m.systemProperties.receiptHandle },
          ],
        });
        if (r.status.code !== 20000) throw new Error(`ack: ${JSON.stringify(r.status)}`);
      }),
    );
    got += messages.length;
  }
  if (got !== N) throw new Error(`received ${got} of ${N}`);
  client.close();
  await broker.close();
  await server.close();
  await store.close();
  process.stdout.write(`${N} messages sent, received and acked\n`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
