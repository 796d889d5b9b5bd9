// `pnpm demo`: the order and payment services in one process, on an embedded broker with a local
// data directory (or a standalone broker / cluster when ROCKETNEST_NAMESRV is set, or Apache
// RocketMQ 5 when ROCKETMQ_PROXY is; `pnpm demo:apache` starts one: apache-main.ts).
import 'reflect-metadata';
import { DemoConfigError, demoConfigFromEnv } from './demo-config';
import { serveDemo } from './serve';

async function main(): Promise<void> {
  await serveDemo(demoConfigFromEnv());
}

main().catch((error: unknown) => {
  console.error(error instanceof DemoConfigError ? `configuration: ${error.message}` : error);
  process.exitCode = 1;
});
