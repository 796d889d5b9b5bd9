import * as path from 'node:path';
import { AccessControl } from '../broker/access-control';
import { Broker } from '../broker/broker';
import { BrokerServer } from '../server/broker-server';
import { systemClock } from '../common/clock';
import { NameServerGrpcRoutes } from '../server/grpc-cluster-routes';
import { GrpcServer } from '../server/grpc-server';
import { FileStore } from '../store/file-store';
import type { StoreEvent } from '../store/store-events';
import type { FlushMode } from '../store/store-options';
import { UsageError, parseAddressList, parseFlags, parsePort, runUntilSignal, serverTls } from './args';

export const BROKER_USAGE = `Usage: rocketnest broker [options]

Runs a broker on a durable store until SIGTERM or SIGINT, then closes it cleanly (pending
appends drain, offsets and timers are persisted, everything is flushed and checkpointed).
Topic configs and consumer offsets live in <store-dir>/config. Standalone, clients connect with
TcpTransport({ brokers: { 'broker-a': 'host:port' } }); with --namesrv the broker registers with
every name server and clients connect with TcpTransport({ nameServers: [...] }).

Options:
  --store-dir <dir>        Data directory, created when absent (default: ./data)
  --flush <async|sync>     Flush mode: async flushes every 500 ms, sync acknowledges after
                           fdatasync with group commit (default: async)
  --segment-size <bytes>   Commit-log segment size (default: 1073741824)
  --disk-pressure-policy <delete-oldest|refuse-writes>
                           Over 85% disk use with nothing expired left to delete: delete the
                           oldest messages, consumed or not (RocketMQ's behaviour), or refuse
                           sends with DISK_FULL and keep them (default: delete-oldest)
  --host <address>         Address to listen on (default: 127.0.0.1)
  --port <n>               TCP port for clients, 0 for any free one (default: 10911, RocketMQ's)
  --grpc-port <n>          Also serve RocketMQ 5's gRPC MessagingService on this port, for the official
                           RocketMQ 5 clients (Apache's proxy uses 8081; 0 = any free one). Uses
                           --tls-cert/--tls-key too (docs/rocketmq5-clients.md). Default: off
  --topics <list>          Topics to create at start if absent: name[:queues[:fifo]],…
                           (e.g. orders:8,payments,ledger:4:fifo)
  --namesrv <list>         Name servers to register with: host:port,… (';' also separates)
  --broker-name <name>     Name clients route by (default: broker-a)
  --cluster <name>         Cluster the broker registers in (default: DefaultCluster)
  --advertised-address <host:port>
                           Address name servers hand to clients (default: the listening one)
  --namesrv-tls-ca <file>  Reach the name servers over TLS, trusting this PEM CA bundle
  --namesrv-access-key <key>
                           Sign registrations with this broker credential (an admin account of the
                           name servers' --acl-file); the secret comes from --namesrv-secret-key or
                           the ROCKETNEST_NAMESRV_SECRET_KEY variable
  --namesrv-secret-key <secret>
                           Secret of --namesrv-access-key
  --transaction-timeout-ms <n>
                           Age of an unresolved half message before the broker asks its producer
                           (default: 6000; RocketMQ transactionTimeOut)
  --transaction-check-interval-ms <n>
                           How often unresolved transactions are checked (default: 30000;
                           RocketMQ transactionCheckInterval)
  --max-reconsume-times <n>
                           Redeliveries a consumer group gets before a message goes to its dead-letter
                           topic %DLQ%<group> (default: 16; RocketMQ's retryMaxTimes)
  --acl-file <path>        ACL JSON file: accounts, their permissions, white-listed addresses; every
                           request must then be signed (docs/security.md). Checked before listening
  --tls-cert <file>        PEM certificate: serve TLS instead of plain TCP (needs --tls-key)
  --tls-key <file>         PEM private key of --tls-cert
  -h, --help               Show this help`;

const percent = (ratio: number): string => `${(ratio * 100).toFixed(1)}%`;

/** One log line per store event; warnings say so. */
function describeStoreEvent(e: StoreEvent): string {
  const ranges = (queues: Array<{ topic: string; queueId: number; fromOffset: number; toOffset: number }>) =>
    queues.map((q) => `${q.topic}/${q.queueId} [${q.fromOffset}, ${q.toOffset})`).join(', ') || 'none';
  switch (e.type) {
    case 'store.disk.full':
      return `WARN store: refusing appends (DISK_FULL), disk holding ${e.dir} ${e.reason === 'no-space' ? 'is out of space' : 'is over its limit'}, ${percent(e.usedRatio)} used`;
    case 'store.disk.ok':
      return `store: taking appends again, disk holding ${e.dir} ${percent(e.usedRatio)} used`;
    case 'store.disk.pressure':
      return `WARN store: disk holding ${e.dir} is ${percent(e.usedRatio)} used (over diskMaxUsedRatio)`;
    case 'store.retention.expired':
      return `store: retention deleted ${e.segments} expired segment(s); queue offsets gone: ${ranges(e.queues)}`;
    case 'store.retention.forced':
      return `WARN store: disk ${percent(e.usedRatio)} used, retention deleted ${e.segments} UNEXPIRED segment(s); messages that may not have been consumed are gone: ${ranges(e.queues)}`;
    case 'store.read.skipped':
      return `WARN store: skipped ${e.topic}/${e.queueId} offset ${e.queueOffset} (commit-log offset ${e.commitLogOffset}): ${e.reason}`;
    case 'store.recovery.rebuilt':
      return `WARN store: rebuilt lost consume-queue entries from the commit log: ${ranges(e.queues)}; ${e.holes} unreadable`;
  }
}

/** RocketMQ's broker listen port. */
const DEFAULT_BROKER_PORT = 10911;

function parseTopics(
  list: string | undefined,
): Array<{ topic: string; queueCount: number | undefined; fifo: boolean }> {
  if (list === undefined) return [];
  return list.split(',').map((item) => {
    const [topic, queues, kind, ...rest] = item.trim().split(':');
    const queueCount = queues === undefined || queues === '' ? undefined : Number(queues);
    if (
      !topic ||
      (queueCount !== undefined && !Number.isInteger(queueCount)) ||
      (kind !== undefined && kind !== 'fifo') ||
      rest.length > 0
    ) {
      throw new UsageError(`--topics takes name[:queues[:fifo]],…; "${item}" is not one`);
    }
    return { topic, queueCount, fifo: kind === 'fifo' };
  });
}

function optionalMs(flags: Map<string, string>, name: string): number | undefined {
  const value = flags.get(name);
  if (value === undefined) return undefined;
  const ms = Number(value);
  if (!Number.isSafeInteger(ms) || ms < 1)
    throw new UsageError(`--${name} must be a positive integer, not "${value}"`);
  return ms;
}

function optionalCount(flags: Map<string, string>, name: string): number | undefined {
  const value = flags.get(name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new UsageError(`--${name} must be a whole number (0 or more), not "${value}"`);
  return n;
}

export async function runBroker(args: string[]): Promise<void> {
  const flags = parseFlags(args, [
    'store-dir',
    'flush',
    'segment-size',
    'disk-pressure-policy',
    'host',
    'port',
    'grpc-port',
    'topics',
    'namesrv',
    'broker-name',
    'cluster',
    'advertised-address',
    'namesrv-tls-ca',
    'namesrv-access-key',
    'namesrv-secret-key',
    'transaction-timeout-ms',
    'transaction-check-interval-ms',
    'max-reconsume-times',
    'acl-file',
    'tls-cert',
    'tls-key',
  ]);
  if (flags.has('help')) {
    console.log(BROKER_USAGE);
    return;
  }
  const flush = flags.get('flush') ?? 'async';
  if (flush !== 'async' && flush !== 'sync')
    throw new UsageError(`--flush must be async or sync, not "${flush}"`);
  const segment = flags.get('segment-size');
  const policy = flags.get('disk-pressure-policy') ?? 'delete-oldest';
  if (policy !== 'delete-oldest' && policy !== 'refuse-writes')
    throw new UsageError(`--disk-pressure-policy must be delete-oldest or refuse-writes, not "${policy}"`);
  const port = parsePort(flags.get('port'), DEFAULT_BROKER_PORT);
  const grpcPortFlag = flags.get('grpc-port');
  const grpcPort = grpcPortFlag === undefined ? undefined : parsePort(grpcPortFlag, 0, '--grpc-port');
  const host = flags.get('host') ?? '127.0.0.1';
  const topics = parseTopics(flags.get('topics'));
  const dir = path.resolve(flags.get('store-dir') ?? 'data');
  const namesrv = flags.get('namesrv');
  const nameServers = namesrv === undefined ? undefined : parseAddressList('--namesrv', namesrv);
  const tls = serverTls(flags);
  const transactionTimeoutMs = optionalMs(flags, 'transaction-timeout-ms');
  const transactionCheckIntervalMs = optionalMs(flags, 'transaction-check-interval-ms');
  const maxReconsumeTimes = optionalCount(flags, 'max-reconsume-times');
  const namesrvCa = flags.get('namesrv-tls-ca');
  const namesrvAccessKey = flags.get('namesrv-access-key');
  const namesrvSecretKey =
    flags.get('namesrv-secret-key') ?? (process.env.ROCKETNEST_NAMESRV_SECRET_KEY || undefined);
  if (namesrvAccessKey !== undefined && namesrvSecretKey === undefined)
    throw new UsageError(
      '--namesrv-access-key needs --namesrv-secret-key or the ROCKETNEST_NAMESRV_SECRET_KEY variable',
    );
  if (namesrvAccessKey === undefined && flags.has('namesrv-secret-key'))
    throw new UsageError('--namesrv-secret-key needs --namesrv-access-key');
  const nameServerClient = {
    ...(namesrvCa === undefined ? {} : { tls: { caFile: path.resolve(namesrvCa) } }),
    ...(namesrvAccessKey === undefined
      ? {}
      : { credentials: { accessKey: namesrvAccessKey, secretKey: namesrvSecretKey! } }),
  };
  // a bad ACL file stops the broker here, before anything is opened
  const aclFile = flags.get('acl-file');
  const acl = aclFile === undefined ? undefined : AccessControl.load(path.resolve(aclFile));
  await runUntilSignal('broker', async () => {
    const store = await FileStore.open({
      dir,
      flushMode: flush as FlushMode,
      segmentSizeBytes: segment === undefined ? undefined : Number(segment),
      diskPressurePolicy: policy,
      onEvent: (e) => console.log(`  ${describeStoreEvent(e)}`),
    });
    const broker = await Broker.start({
      store,
      configDir: path.join(dir, 'config'),
      brokerName: flags.get('broker-name'),
      transactionTimeoutMs,
      transactionCheckIntervalMs,
      maxReconsumeTimes,
    }).catch(async (error: unknown) => {
      await store.close();
      throw error;
    });
    for (const { topic, queueCount, fifo } of topics) {
      if (!broker.getTopic(topic)) broker.createTopic({ topic, queueCount, fifo });
    }
    // gRPC first: with name servers, its port goes into the broker's registration, so that the
    // other brokers' gRPC routes list this broker's gRPC endpoint
    const grpc =
      grpcPort === undefined
        ? undefined
        : await GrpcServer.start({
            broker,
            host,
            port: grpcPort,
            tls,
            acl,
            clusterRoutes:
              nameServers === undefined
                ? undefined
                : new NameServerGrpcRoutes(nameServers, systemClock, nameServerClient),
          }).catch(async (error: unknown) => {
            await broker.close();
            await store.close();
            throw error;
          });
    const advertised = flags.get('advertised-address');
    const advertisedHost =
      advertised !== undefined
        ? advertised.slice(0, advertised.lastIndexOf(':'))
        : host === '0.0.0.0' || host === '::'
          ? '127.0.0.1'
          : host;
    const server = await BrokerServer.start({
      broker,
      host,
      port,
      acl,
      tls,
      nameServers,
      clusterName: flags.get('cluster'),
      advertisedAddress: advertised,
      grpcAddress: grpc ? `${advertisedHost}:${grpc.port}` : undefined,
      nameServerClient,
      onRegistrationError: (error, nameServer) =>
        console.log(`  registration with name server ${nameServer} failed: ${(error as Error).message}`),
    }).catch(async (error: unknown) => {
      await broker.close();
      await grpc?.close();
      await store.close();
      throw error;
    });
    const { truncatedBytes, verifiedRecords, fromCheckpoint } = store.recovery;
    const range = store.commitLogRange();
    console.log(
      `rocketnest broker: ${broker.brokerName}, store ${store.storeId} open at ${dir} (flush ${flush})`,
    );
    console.log(
      `  recovered ${fromCheckpoint ? 'from checkpoint' : 'without checkpoint'}: ${verifiedRecords} records verified, ` +
        `${truncatedBytes} bytes truncated; commit log ${range.minOffset}..${range.maxOffset}, ${store.queues().length} queues`,
    );
    console.log(`  ${broker.listTopics().length} topics, ${broker.scheduledCount} delayed messages waiting`);
    const listening = server.address();
    console.log(`  listening on ${listening.host}:${listening.port}${tls ? ' (TLS)' : ''}`);
    if (grpc)
      console.log(`  gRPC (RocketMQ 5 MessagingService) on ${host}:${grpc.port}${tls ? ' (TLS)' : ''}`);
    if (acl) console.log(`  ACL on: ${acl.accessKeys.length} accounts from ${path.resolve(aclFile!)}`);
    const registered = server.registeredWith;
    if (registered)
      console.log(`  registered with ${registered.registered} of ${registered.of} name servers`);
    return async () => {
      // the broker first: it answers parked long polls, so the server's close does not wait for them
      await broker.close();
      await grpc?.close();
      await server.close();
      await store.close();
    };
  });
}
