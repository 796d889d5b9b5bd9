// `pnpm demo:apache`: the demo on a real Apache RocketMQ 5. Starts a local cluster (name server,
// broker and gRPC proxy from Maven Central's jars, tools/apache-rocketmq.sh) in
// `<DEMO_DATA_DIR>/apache` with the demo's topics and their types, runs both services on it through
// the Apache driver, and stops the cluster on Ctrl-C. To use a cluster of your own instead, create
// the topics of APACHE_DEMO_TOPICS there and run `ROCKETMQ_PROXY=host:8081 pnpm demo`.
import 'reflect-metadata';
import * as path from 'node:path';
import { APACHE_DEMO_TOPICS, startApacheCluster, type ApacheCluster } from './apache-cluster';
import { DemoConfigError, demoConfigFromEnv } from './demo-config';
import { serveDemo } from './serve';

async function main(): Promise<void> {
  const config = demoConfigFromEnv({ ...process.env, ROCKETMQ_PROXY: '', ROCKETNEST_NAMESRV: '' });
  const workDir = path.join(config.dataDir, 'apache');
  console.log(`starting Apache RocketMQ 5 in ${workDir} (30-60 s; the first run downloads its jars)…`);
  console.log(`  topics: ${APACHE_DEMO_TOPICS.join(' ')}`);
  let cluster: ApacheCluster | undefined;
  let interrupted = false;
  const early = (): void => {
    interrupted = true; // a signal while the cluster starts: stop it once it is up
  };
  process.once('SIGINT', early);
  process.once('SIGTERM', early);
  try {
    cluster = await startApacheCluster(workDir);
    process.off('SIGINT', early);
    process.off('SIGTERM', early);
    if (interrupted) {
      await cluster.stop();
      return;
    }
    console.log(`Apache RocketMQ: name server ${cluster.namesrv}, proxy ${cluster.proxy} (gRPC)`);
    await serveDemo({ ...config, apacheProxy: cluster.proxy }, { afterStop: cluster.stop });
  } catch (error) {
    await cluster?.stop();
    throw error;
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof DemoConfigError ? `configuration: ${error.message}` : error);
  process.exitCode = 1;
});
