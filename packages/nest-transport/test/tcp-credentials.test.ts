import 'reflect-metadata';
import { Controller } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { isRocketError } from '@rocketnest/core-broker';
import { AccessControl, BrokerServer } from '@rocketnest/core-broker/broker';
import { RocketModule, RocketListener, RocketServer, RocketTemplate } from '../src';
import { startTestBroker, type TestBroker } from './support/embedded-broker';
import { waitFor } from './support/wait';

// `tcp` options reach the TcpTransport: against a broker with an ACL, requests are signed with
// `tcp.credentials`, and refused without them.
let tb: TestBroker;
let server: BrokerServer;
let brokers: Record<string, string>;
const credentials = { accessKey: 'orders-app', secretKey: 'orders-secret-1234' };

beforeAll(async () => {
  tb = await startTestBroker(['secured']);
  const acl = AccessControl.parse({
    accounts: [{ ...credentials, defaultTopicPerm: 'PUB|SUB', defaultGroupPerm: 'PUB|SUB' }],
  });
  server = await BrokerServer.start({ broker: tb.broker, port: 0, acl });
  const { host, port } = server.address();
  brokers = { [tb.broker.brokerName]: `${host}:${port}` };
});
afterAll(async () => {
  await server?.close();
  await tb?.close();
});

it('signs requests with tcp.credentials; without them the broker refuses', async () => {
  const seen: unknown[] = [];
  @Controller()
  class Secured {
    @RocketListener('secured', '*', { group: 'secured-group' })
    on(@Payload() payload: unknown) {
      seen.push(payload);
    }
  }
  const moduleRef = await Test.createTestingModule({
    imports: [RocketModule.forRoot({ brokers, tcp: { credentials } })],
    controllers: [Secured],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  app.connectMicroservice({
    strategy: new RocketServer({
      brokers,
      tcp: { credentials },
      consumer: { consumeFromWhere: 'FIRST_OFFSET' },
    }),
  });
  await app.startAllMicroservices();
  await app.init();
  try {
    await app.get(RocketTemplate).send('secured', { signed: true });
    await waitFor(() => seen.length === 1, 'the signed message');
    expect(seen).toEqual([{ signed: true }]);
  } finally {
    await app.close();
  }

  const unsigned = await Test.createTestingModule({ imports: [RocketModule.forRoot({ brokers })] }).compile();
  const refused = unsigned.createNestApplication({ logger: false });
  try {
    const error = await refused
      .get(RocketTemplate)
      .send('secured', {})
      .catch((e: unknown) => e);
    expect(isRocketError(error) && error.code).toBe('ACCESS_DENIED');
    expect((error as Error).message).toMatch(/access denied/);
  } finally {
    await refused.close();
  }
});
