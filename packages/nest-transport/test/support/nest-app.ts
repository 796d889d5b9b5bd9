import 'reflect-metadata';
import type { INestMicroservice, LoggerService, Provider, Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { RocketServer, type RocketServerOptions } from '../../src';

/** Keeps what Nest's `Logger` was told, so tests can assert on logs without printing them. */
export class CapturingLogger implements LoggerService {
  readonly lines: Array<{ level: string; message: string; trace?: unknown }> = [];
  log(message: unknown): void {
    this.lines.push({ level: 'log', message: String(message) });
  }
  error(message: unknown, trace?: unknown): void {
    this.lines.push({ level: 'error', message: String(message), trace });
  }
  warn(message: unknown): void {
    this.lines.push({ level: 'warn', message: String(message) });
  }
  debug(): void {}
  verbose(): void {}
  has(level: string, fragment: string): boolean {
    return this.lines.some((l) => l.level === level && l.message.includes(fragment));
  }
}

/** A Nest microservice with `controllers` on a fresh RocketServer; the caller closes `app`. */
export async function startRocketMicroservice(
  controllers: Type[],
  options: RocketServerOptions,
  providers: Provider[] = [],
): Promise<{ app: INestMicroservice; server: RocketServer; logs: CapturingLogger }> {
  const logs = new CapturingLogger();
  const moduleRef = await Test.createTestingModule({ controllers, providers }).compile();
  const server = new RocketServer(options);
  const app = moduleRef.createNestMicroservice({ strategy: server, logger: logs });
  app.useLogger(logs);
  await app.listen();
  return { app, server, logs };
}
