'use strict';
// Starts the app. With ROCKETNEST_BROKER=host:port it uses that standalone broker (started with
// `rocketnest broker --topics orders`); without it, a broker embedded in this process on a
// MemoryStore (development only: nothing survives a restart). SIGTERM/SIGINT stop it cleanly.
const { TcpTransport } = require('@rocketnest/core-broker');
const { Broker, InProcessTransport, MemoryStore } = require('@rocketnest/core-broker/broker');
const { createApp } = require('./app');
const { Billing, startBillingConsumer } = require('./billing');

async function connect() {
  const address = process.env.ROCKETNEST_BROKER;
  if (address) {
    const transport = new TcpTransport({ brokers: { 'broker-a': address } });
    return { transport, close: () => transport.close() };
  }
  const store = await MemoryStore.create();
  const broker = await Broker.start({ store });
  broker.createTopic({ topic: 'orders' });
  return {
    transport: new InProcessTransport(broker),
    close: async () => {
      await broker.close();
      await store.close();
    },
  };
}

async function main() {
  const connection = await connect();
  const billing = new Billing();
  const consumer = await startBillingConsumer({ transport: connection.transport, billing });
  const { app, publisher } = createApp({ transport: connection.transport, billing });
  const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
    const { address, port } = server.address();
    console.log(`listening on http://${address}:${port}`);
  });
  const stop = async () => {
    await new Promise((resolve) => server.close(resolve));
    await publisher.close();
    await consumer.shutdown();
    await connection.close();
    console.log('stopped');
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
