import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { BrokerServer, NameServer } from '@rocketnest/core-broker/broker';
import { firstValueFrom } from 'rxjs';
import {
  RocketClient,
  RocketListener,
  RocketModule,
  RocketRecordBuilder,
  RocketServer,
  RocketTemplate,
} from '../src';
import { startTestBroker, type TestBroker } from './support/embedded-broker';
import { waitFor } from './support/wait';

// A small cluster in this process: a name server and a broker served over TCP that registers with it.
// The app reaches it only by the name server's address, as a RocketMQ client does.
let nameServer: NameServer;
let tb: TestBroker;
let brokerServer: BrokerServer;
let nameServers: string[];

beforeAll(async () => {
  nameServer = await NameServer.start({ port: 0 });
  const { host, port } = nameServer.address();
  nameServers = [`${host}:${port}`];
  tb = await startTestBroker(['cluster-orders', 'cluster-rpc']);
  brokerServer = await BrokerServer.start({ broker: tb.broker, port: 0, nameServers });
});
afterAll(async () => {
  await brokerServer?.close();
  await tb?.close();
  await nameServer?.close();
});

const seen: unknown[] = [];

@Controller()
class ClusterController {
  @RocketListener('cluster-orders', 'created', { group: 'cluster-consumer' })
  onCreated(@Payload() payload: unknown) {
    seen.push(payload);
  }
  @RocketListener('cluster-rpc', 'ping', { group: 'cluster-rpc', reply: true })
  ping(@Payload() payload: string) {
    return `${payload}-pong`;
  }
}

it('RocketModule, RocketServer and RocketClient reach a cluster by name-server addresses', async () => {
  @Module({ imports: [RocketModule.forRoot({ nameServers })], controllers: [ClusterController] })
  class AppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  app.connectMicroservice({
    strategy: new RocketServer({ nameServers, consumer: { consumeFromWhere: 'FIRST_OFFSET' } }),
  });
  await app.startAllMicroservices();
  await app.init();
  try {
    const sent = await app.get(RocketTemplate).send('cluster-orders:created', { id: 'c1' });
    expect(sent.brokerName).toBe(tb.broker.brokerName);
    await waitFor(() => seen.length === 1, 'the message through the cluster');
    expect(seen).toEqual([{ id: 'c1' }]);
    const pong = await firstValueFrom(
      app.get(RocketClient).send('cluster-rpc', new RocketRecordBuilder('ping').setTag('ping').build()),
    );
    expect(pong).toBe('ping-pong');
  } finally {
    await app.close();
  }
});
