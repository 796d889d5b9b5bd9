import 'reflect-metadata';
import { type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RocketConnection, RocketServer } from '@rocketnest/nest-transport';
import { pathToFileURL } from 'node:url';
import { AppModule } from './app.module.js';

/** The HTTP app and its RocketNest listeners on one connection (embedded or standalone). */
export async function createApp(module = AppModule.register()): Promise<INestApplication> {
  const app = await NestFactory.create(module, { logger: ['error', 'warn'] });
  app.enableShutdownHooks();
  app.connectMicroservice({ strategy: new RocketServer({ transport: app.get(RocketConnection).transport }) });
  await app.startAllMicroservices();
  return app;
}

async function bootstrap(): Promise<void> {
  const app = await createApp();
  await app.listen(process.env.PORT ?? 3000);
  console.log(`listening on ${await app.getUrl()}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await bootstrap();
