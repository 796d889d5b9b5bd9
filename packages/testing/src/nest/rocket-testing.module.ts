import { Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import {
  DEFAULT_REPLY_TOPIC,
  RocketModule,
  RocketServer,
  type RocketModuleOptions,
  type RocketServerOptions,
} from '@rocketnest/nest-transport';
import { TestBroker, createTestBroker, type TestBrokerOptions } from '../test-broker';

/** `RocketTestingModule.forRoot`: the test broker's options, and `RocketModule`'s own (producer group, reply topic…). */
export interface RocketTestingModuleOptions
  extends
    TestBrokerOptions,
    Pick<RocketModuleOptions, 'producerGroup' | 'producer' | 'replyTopic' | 'replyTimeoutMs'> {}

/** Closes the test broker when the app shuts down. */
@Injectable()
class TestBrokerCloser implements OnApplicationShutdown {
  constructor(@Inject(TestBroker) private readonly broker: TestBroker) {}

  async onApplicationShutdown(): Promise<void> {
    await this.broker.close();
  }
}

/**
 * Use instead of `RocketModule.forRoot` in `@nestjs/testing`: the same providers (`RocketTemplate`,
 * `RocketClient`, `RocketConnection`, transaction listeners) wired to a {@link TestBroker} — a real
 * broker in memory on a virtual clock. Inject `TestBroker` to inspect, drain and move time; serve
 * the app's `@RocketListener`s with {@link rocketTestServer}.
 */
@Module({})
export class RocketTestingModule {
  static forRoot(options: RocketTestingModuleOptions = {}): DynamicModule {
    const { producerGroup, producer, replyTopic, replyTimeoutMs, ...brokerOptions } = options;
    const reply = replyTopic ?? DEFAULT_REPLY_TOPIC;
    const brokerModule: DynamicModule = {
      module: class RocketTestBrokerModule {},
      providers: [
        {
          provide: TestBroker,
          useFactory: () =>
            createTestBroker({ ...brokerOptions, topics: [...(brokerOptions.topics ?? []), reply] }),
        },
        TestBrokerCloser,
      ],
      exports: [TestBroker],
    };
    return {
      module: RocketTestingModule,
      global: true,
      imports: [
        brokerModule,
        RocketModule.forRootAsync({
          imports: [brokerModule],
          inject: [TestBroker],
          useFactory: (broker: TestBroker): RocketModuleOptions => ({
            transport: broker.transport,
            clock: broker.clock,
            replyTopic: reply,
            ...(producerGroup !== undefined ? { producerGroup } : {}),
            ...(producer !== undefined ? { producer } : {}),
            ...(replyTimeoutMs !== undefined ? { replyTimeoutMs } : {}),
          }),
        }),
      ],
      exports: [brokerModule],
    };
  }
}

/**
 * A `RocketServer` on the app's test broker (its transport and virtual clock), for
 * `app.connectMicroservice({ strategy: rocketTestServer(app) })`.
 */
export function rocketTestServer(
  app: { get(token: typeof TestBroker): unknown },
  options: Omit<RocketServerOptions, 'transport' | 'nameServers' | 'brokers' | 'embedded' | 'clock'> = {},
): RocketServer {
  const broker = app.get(TestBroker) as TestBroker;
  return new RocketServer({ ...options, transport: broker.transport, clock: broker.clock });
}
