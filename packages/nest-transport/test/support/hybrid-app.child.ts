// A hybrid Nest app (HTTP + RocketServer) on an embedded broker, run as its own process by
// shutdown.test.ts: `close` mode calls app.close() and must then exit on its own (nothing left
// open); `signal` mode waits for SIGTERM, which enableShutdownHooks turns into app.close().
import 'reflect-metadata';
import { Controller, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Payload } from '@nestjs/microservices';
import { RocketConnection, RocketListener, RocketModule, RocketServer, RocketTemplate } from '../../src';

let received = 0;

@Controller()
class JobsController {
  @RocketListener('jobs', '*', { group: 'child-jobs' })
  onJob(@Payload() payload: { n: number }) {
    received++;
    console.log(`received ${payload.n}`);
  }
}

@Injectable()
class ShutdownReporter implements OnApplicationShutdown {
  onApplicationShutdown(signal?: string) {
    console.log(`shutdown hook ${signal ?? 'close'}`);
  }
}

@Module({
  imports: [RocketModule.forRoot({ embedded: { topics: ['jobs'] } })],
  controllers: [JobsController],
  providers: [ShutdownReporter],
})
class AppModule {}

async function main(mode: string): Promise<void> {
  const app = await NestFactory.create(AppModule, { logger: ['error'] });
  app.enableShutdownHooks();
  const server = new RocketServer({
    transport: app.get(RocketConnection).transport,
    consumer: { consumeFromWhere: 'FIRST_OFFSET' },
  });
  app.connectMicroservice({ strategy: server });
  await app.startAllMicroservices();
  await app.listen(0, '127.0.0.1');
  await app.get(RocketTemplate).send('jobs', { n: 1 });
  const deadline = Date.now() + 5000;
  while (received === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  server.status.subscribe((status) => console.log(`server ${status}`));
  if (mode === 'close') {
    await app.close();
    console.log('closed');
    return; // the process must now exit by itself
  }
  console.log('ready');
}

main(process.argv[2] ?? 'close').catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
