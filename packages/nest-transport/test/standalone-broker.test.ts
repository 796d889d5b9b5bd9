import 'reflect-metadata';
import { Controller, type INestApplication } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { isRocketError } from '@rocketnest/core-broker';
import { RocketContext, RocketListener, RocketModule, RocketServer, RocketTemplate } from '../src';
import { runCli, spawnBroker, type BrokerProcess } from './support/broker-process';
import { waitFor } from './support/wait';

// A standalone broker process named "broker-z": nobody here tells the clients that name.
let broker: BrokerProcess;
beforeAll(async () => {
  broker = await spawnBroker(['RocketNestReply', 'present'], 20_000, ['--broker-name', 'broker-z']);
});
afterAll(async () => {
  await broker?.stop();
});

const seen: Array<{ payload: unknown; broker: string }> = [];

@Controller()
class Present {
  @RocketListener('present', 'x', { group: 'present-group' })
  on(@Payload() payload: unknown, @Ctx() ctx: RocketContext): void {
    seen.push({ payload, broker: ctx.getBrokerName() });
  }
}

@Controller()
class Absent {
  @RocketListener('absent', 'x', { group: 'absent-group' })
  on(): void {}
}

async function app(controller: new () => unknown): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [RocketModule.forRoot({ brokers: [broker.address] })],
    controllers: [controller],
  }).compile();
  const nest = moduleRef.createNestApplication({ logger: false });
  nest.connectMicroservice({
    strategy: new RocketServer({ brokers: [broker.address], consumer: { consumeFromWhere: 'FIRST_OFFSET' } }),
  });
  return nest;
}

describe('a standalone broker', () => {
  it('is reached by its address alone: its name is learned from it', async () => {
    const nest = await app(Present);
    await nest.startAllMicroservices();
    await nest.init();
    try {
      const sent = await nest.get(RocketTemplate).send('present:x', { n: 1 });
      expect(sent.brokerName).toBe('broker-z');
      await waitFor(() => seen.length === 1, 'the message over TCP', 15_000);
      expect(seen).toEqual([{ payload: { n: 1 }, broker: 'broker-z' }]);
    } finally {
      await nest.close();
    }
  });

  it('without a listener topic, the app fails at bootstrap naming the topic and the admin command; that command fixes it', async () => {
    const nest = await app(Absent);
    const error = await nest.startAllMicroservices().catch((e: unknown) => e);
    await nest.close();
    expect(isRocketError(error) && error.code).toBe('TOPIC_NOT_FOUND');
    const message = (error as Error).message;
    expect(message).toContain('"absent" (Absent.on)');
    const command = /rocketnest (admin topic create --topic absent --broker \S+)/.exec(message);
    expect(command).not.toBeNull();
    expect(command![1]).toBe(`admin topic create --topic absent --broker ${broker.address}`);
    const run = await runCli(command![1]!.split(' '));
    expect(run).toMatchObject({ code: 0 });
    const again = await app(Absent);
    try {
      await again.startAllMicroservices();
    } finally {
      await again.close();
    }
  });

  it('an address where no broker answers fails with BROKER_UNAVAILABLE naming it', async () => {
    const server = new RocketServer({ brokers: ['127.0.0.1:1'], tcp: { requestTimeoutMs: 1000 } });
    @Controller()
    class Any {
      @RocketListener('present', 'x', { group: 'nowhere' })
      on(): void {}
    }
    const moduleRef = await Test.createTestingModule({ controllers: [Any] }).compile();
    const nest = moduleRef.createNestMicroservice({ strategy: server, logger: false });
    const error = await nest.listen().catch((e: unknown) => e);
    await nest.close();
    expect(isRocketError(error) && error.code).toBe('BROKER_UNAVAILABLE');
    expect((error as Error).message).toContain('cannot learn the name of the broker at 127.0.0.1:1');
  });
});
