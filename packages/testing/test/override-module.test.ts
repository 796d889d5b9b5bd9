import 'reflect-metadata';
import { Controller, Injectable, Module } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { RocketListener, RocketModule, RocketTemplate } from '@rocketnest/nest-transport';
import { TestBroker } from '@rocketnest/testing';
import { RocketTestingModule, rocketTestServer } from '@rocketnest/testing/nest';

const seen: unknown[] = [];

@Injectable()
class Orders {
  constructor(private readonly rocket: RocketTemplate) {}
  place(id: string) {
    return this.rocket.send('orders:created', { id });
  }
}

@Controller()
class Billing {
  @RocketListener('orders', 'created', { group: 'billing' })
  on(@Payload() order: unknown): void {
    seen.push(order);
  }
}

// The production module: a standalone broker that is not running in the test. Nest overrides an
// imported dynamic module by identity, so the app keeps the one it imports in a constant.
const rocketModule = RocketModule.forRoot({ brokers: ['127.0.0.1:1'] });

@Module({
  imports: [rocketModule],
  providers: [Orders],
  controllers: [Billing],
})
class AppModule {}

test('overrideModule(rocketModule).useModule(RocketTestingModule.forRoot()) swaps the broker of an app module', async () => {
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
    .overrideModule(rocketModule)
    .useModule(RocketTestingModule.forRoot())
    .compile();
  const app = moduleRef.createNestApplication({ logger: false });
  app.connectMicroservice({ strategy: rocketTestServer(app) });
  await app.startAllMicroservices();
  await app.init();
  try {
    await app.get(Orders).place('o-1');
    const tb = app.get(TestBroker);
    await tb.drain();
    expect(seen).toEqual([{ id: 'o-1' }]);
  } finally {
    await app.close();
  }
});

test('overrideModule(RocketModule), the class, cannot match a forRoot() import: Nest compares by identity', async () => {
  // documents why the README asks for the constant: the production broker stays in place
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
    .overrideModule(RocketModule)
    .useModule(RocketTestingModule.forRoot())
    .compile();
  const app = moduleRef.createNestApplication({ logger: false });
  try {
    expect(() => app.get(TestBroker)).toThrow(/TestBroker/);
  } finally {
    await app.close();
  }
});
