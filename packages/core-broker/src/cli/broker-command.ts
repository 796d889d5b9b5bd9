import * as net from 'node:net';
import * as path from 'node:path';
import { AccessControl } from '../broker/access-control';
import { Broker } from '../broker/broker';
import { BrokerHttpEndpoint } from '../server/broker-http';
import { BrokerMetrics } from '../server/broker-metrics';
import { BrokerServer } from '../server/broker-server';
import { systemClock } from '../common/clock';
import { NameServerGrpcRoutes } from '../server/grpc-cluster-routes';
import { GrpcServer } from '../server/grpc-server';
import { SlaveSync } from '../server/slave-sync';
import { lookUpMasterHaAddress } from '../server/master-lookup';
import { RocketError } from '../common/errors';
import { BROKER_ROLES, DEFAULT_BROKER_NAME, type BrokerRole } from '../broker/broker-options';
import { DEFAULT_CLUSTER_NAME } from '../server/broker-registrar';
import { FileStore } from '../store/file-store';
import { HaMaster, type HaMasterEvent } from '../store/ha-master';
import { HaSlave, type HaSlaveEvent } from '../store/ha-slave';
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
  --index-slots-per-file <n>
                           Hash slots per key-index file (default: 500000; RocketMQ maxHashSlotNum)
  --index-entries-per-file <n>
                           Keys per key-index file (default: 2000000; RocketMQ maxIndexNum)
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
  --role <ASYNC_MASTER|SYNC_MASTER|SLAVE>
                           Replication role (default: ASYNC_MASTER; RocketMQ brokerRole). A
                           SYNC_MASTER acknowledges a send once a slave holds it, else answers
                           FLUSH_SLAVE_TIMEOUT or SLAVE_NOT_AVAILABLE; a SLAVE copies its master
                           and serves reads only (docs/replication.md)
  --broker-id <n>          0 for a master, 1 or more for a slave (default: 0; RocketMQ brokerId);
                           master and slaves share --broker-name
  --ha-port <n>            A master's port for its slaves (default: --port + 1, or any free one
                           with --port 0; RocketMQ haListenPort). Opened when --role or --ha-port
                           is given: a broker started with neither stays standalone. A SLAVE
                           opens it once promoted (admin broker promote)
  --master-address <host:port>
                           A slave's master: the master's --ha-port address (RocketMQ haMasterAddress).
                           Without it, a SLAVE with --namesrv looks up the HA address its master
                           (same --broker-name and --cluster, broker id 0) registered there
  --master-lookup-timeout-ms <n>
                           How long that look-up waits for the master to register (default: 30000)
  --slave-sync-interval-ms <n>
                           How often a SLAVE copies its master's topic configs, consumer offsets
                           and delay progress (default: 10000, RocketMQ's SlaveSynchronize period)
  --sync-flush-timeout-ms <n>
                           How long a SYNC_MASTER waits for a slave (default: 5000; RocketMQ
                           syncFlushTimeout)
  --tls-cert <file>        PEM certificate: serve TLS instead of plain TCP (needs --tls-key)
  --tls-key <file>         PEM private key of --tls-cert
  --http-port <n>          Serve HTTP on this port (0 = any free one): /metrics (Prometheus),
                           /healthz, /readyz, /dashboard (docs/operations.md). With --acl-file every path but
                           /healthz needs HTTP Basic accessKey:secretKey. Default: off (no metrics kept)
  --http-host <address>    Address the HTTP port listens on (default: 127.0.0.1)
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
    case 'store.recovery.index-rebuilt':
      return `WARN store: key-index file(s) ${e.files.join(', ')} were damaged; re-indexed the commit log from offset ${e.fromOffset}`;
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
    'index-slots-per-file',
    'index-entries-per-file',
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
    'role',
    'broker-id',
    'ha-port',
    'master-address',
    'master-lookup-timeout-ms',
    'sync-flush-timeout-ms',
    'slave-sync-interval-ms',
    'http-port',
    'http-host',
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
  const httpPortFlag = flags.get('http-port');
  const httpPort = httpPortFlag === undefined ? undefined : parsePort(httpPortFlag, 0, '--http-port');
  const httpHost = flags.get('http-host') ?? '127.0.0.1';
  if (httpPort === undefined && flags.has('http-host')) throw new UsageError('--http-host needs --http-port');
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
  const replication = parseReplication(flags, port);
  // a slave without --master-address finds its master's HA port on the name servers, before anything opens
  const masterAddress =
    replication.role !== 'SLAVE' || replication.masterAddress !== undefined
      ? replication.masterAddress
      : await lookUpMasterHaAddress({
          nameServers: nameServers!,
          clusterName: flags.get('cluster') ?? DEFAULT_CLUSTER_NAME,
          brokerName: flags.get('broker-name') ?? DEFAULT_BROKER_NAME,
          timeoutMs: optionalMs(flags, 'master-lookup-timeout-ms'),
          remoting: nameServerClient,
        });
  // a bad ACL file stops the broker here, before anything is opened
  const aclFile = flags.get('acl-file');
  const acl = aclFile === undefined ? undefined : AccessControl.load(path.resolve(aclFile));
  await runUntilSignal('broker', async () => {
    // the HTTP endpoint first: probes see "alive, not ready" while the store recovers
    const metrics = httpPort === undefined ? undefined : new BrokerMetrics();
    const http =
      metrics === undefined
        ? undefined
        : await BrokerHttpEndpoint.start({ host: httpHost, port: httpPort!, acl, metrics });
    if (http) {
      const a = http.address();
      console.log(`  HTTP (/metrics, /healthz, /readyz, /dashboard) on ${a.host}:${a.port}`);
    }
    const store = await FileStore.open({
      dir,
      flushMode: flush as FlushMode,
      segmentSizeBytes: segment === undefined ? undefined : Number(segment),
      indexSlotsPerFile: optionalMs(flags, 'index-slots-per-file'),
      indexEntriesPerFile: optionalMs(flags, 'index-entries-per-file'),
      diskPressurePolicy: policy,
      onEvent: (e) => console.log(`  ${describeStoreEvent(e)}`),
      ...(metrics ? { onFlush: (seconds: number) => metrics.flushed(seconds) } : {}),
    }).catch(async (error: unknown) => {
      await http?.close();
      throw error;
    });
    let ha: HaMaster | undefined;
    let slave: HaSlave | undefined;
    // set once listening: the promotion hook needs them
    const late: { server?: BrokerServer; slaveSync?: SlaveSync } = {};
    try {
      if (replication.role === 'SLAVE') {
        slave = HaSlave.start({
          store,
          masterAddress: masterAddress!,
          onEvent: (e) => console.log(`  ${describeHaEvent(e)}`),
        });
      } else if (replication.listensForSlaves) {
        ha = await HaMaster.start({
          store,
          host,
          port: replication.haPort,
          syncFlushTimeoutMs: replication.syncFlushTimeoutMs,
          onEvent: (e) => console.log(`  ${describeHaEvent(e)}`),
        });
      }
    } catch (error) {
      await store.close();
      throw error;
    }
    const stopReplication = async (): Promise<void> => {
      await slave?.close();
      await ha?.close();
    };
    const broker = await Broker.start({
      store,
      role: replication.role,
      replicas: ha,
      replicationStats: () => replicationStats(ha, slave),
      promote: async (request) => {
        const link = slave;
        if (!link) throw new RocketError('INVALID_ARGUMENT', 'this broker is no slave');
        const state = link.state();
        if (!request.force) {
          const alive = state.connected
            ? state.master
            : (await answers(masterAddress!))
              ? masterAddress!
              : state.masterClientAddress && (await answers(state.masterClientAddress))
                ? state.masterClientAddress
                : undefined;
          if (alive !== undefined)
            throw new RocketError(
              'MASTER_STILL_ALIVE',
              `the master at ${alive} still answers: stop it (fence it) before promoting this slave, or pass --force if it is down for good`,
            );
        }
        await late.slaveSync?.close();
        await link.close();
        slave = undefined;
        const role = request.role ?? 'ASYNC_MASTER';
        ha = await HaMaster.start({
          store,
          host,
          port: replication.haPort,
          syncFlushTimeoutMs: replication.syncFlushTimeoutMs,
          onEvent: (e) => console.log(`  ${describeHaEvent(e)}`),
        });
        ha.advertise(clientAddress());
        broker.becomeMaster(role, ha);
        await late.server!.changeBrokerId(0);
        console.log(
          `  replication: promoted to ${role} (broker id 0) at commit-log offset ${store.commitLogRange().maxOffset}; slaves connect to ${host}:${ha.port}`,
        );
        return { role, maxOffset: store.commitLogRange().maxOffset, haAddress: `${host}:${ha.port}` };
      },
      configDir: path.join(dir, 'config'),
      brokerName: flags.get('broker-name'),
      transactionTimeoutMs,
      transactionCheckIntervalMs,
      maxReconsumeTimes,
      observer: metrics,
    }).catch(async (error: unknown) => {
      await stopReplication();
      await store.close();
      await http?.close();
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
            await stopReplication();
            await store.close();
            await http?.close();
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
      brokerId: replication.brokerId,
      advertisedAddress: advertised,
      grpcAddress: grpc ? `${advertisedHost}:${grpc.port}` : undefined,
      // read at each registration: a promoted slave opens its HA port at run time
      haAddress: () => (ha === undefined ? undefined : `${advertisedHost}:${ha.port}`),
      nameServerClient,
      onRegistrationError: (error, nameServer) =>
        console.log(`  registration with name server ${nameServer} failed: ${(error as Error).message}`),
    }).catch(async (error: unknown) => {
      await broker.close();
      await grpc?.close();
      await stopReplication();
      await store.close();
      await http?.close();
      throw error;
    });
    const clientAddress = (): string => {
      const at = server.address();
      return flags.get('advertised-address') ?? `${at.host}:${at.port}`;
    };
    ha?.advertise(clientAddress());
    const slaveSync = slave
      ? new SlaveSync({
          broker,
          masterAddress: () => slave!.state().masterClientAddress,
          intervalMs: optionalMs(flags, 'slave-sync-interval-ms'),
          onError: (error) =>
            console.log(
              `  WARN replication: copying the master's topics and offsets failed: ${(error as Error).message}`,
            ),
          onSynced: (c) =>
            console.log(
              `  replication: copied ${c.topics} topic config(s) and ${c.offsets} offset(s) from the master` +
                (c.delayProgress ? ', and its delay progress' : ''),
            ),
        })
      : undefined;
    slaveSync?.start();
    late.server = server;
    late.slaveSync = slaveSync;
    http?.attach({ broker, server });
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
    if (ha)
      console.log(
        `  replication: ${replication.role} (broker id ${replication.brokerId}), slaves connect to ${host}:${ha.port}`,
      );
    if (slave)
      console.log(
        `  replication: SLAVE (broker id ${replication.brokerId}) of ${masterAddress}` +
          (replication.masterAddress === undefined ? ' (its HA address on the name servers)' : ''),
      );
    if (acl) console.log(`  ACL on: ${acl.accessKeys.length} accounts from ${path.resolve(aclFile!)}`);
    const registered = server.registeredWith;
    if (registered)
      console.log(`  registered with ${registered.registered} of ${registered.of} name servers`);
    return async () => {
      http?.stopping();
      // the broker first: it answers parked long polls, so the server's close does not wait for them
      await broker.close();
      await grpc?.close();
      await slaveSync?.close();
      await server.close();
      await stopReplication();
      await store.close();
      await http?.close();
    };
  });
}

interface ReplicationFlags {
  role: BrokerRole;
  /** A master opens its HA port when named a master (--role) or given --ha-port; a plain broker stays standalone. */
  listensForSlaves: boolean;
  brokerId: number;
  haPort: number;
  masterAddress: string | undefined;
  syncFlushTimeoutMs: number | undefined;
}

/** Checks --role, --broker-id, --ha-port, --master-address together; every mistake names its fix. */
export function parseReplication(flags: Map<string, string>, port: number): ReplicationFlags {
  const role = (flags.get('role') ?? 'ASYNC_MASTER') as BrokerRole;
  if (!BROKER_ROLES.includes(role))
    throw new UsageError(`--role must be one of ${BROKER_ROLES.join(', ')}, not "${flags.get('role')}"`);
  const idFlag = flags.get('broker-id');
  const brokerId = idFlag === undefined ? (role === 'SLAVE' ? -1 : 0) : Number(idFlag);
  if (idFlag !== undefined && (!Number.isSafeInteger(brokerId) || brokerId < 0 || brokerId > 0xffff))
    throw new UsageError(`--broker-id must be an integer in [0, 65535], not "${idFlag}"`);
  const masterAddress = flags.get('master-address');
  if (role === 'SLAVE') {
    if (brokerId < 1)
      throw new UsageError("a SLAVE needs --broker-id 1 or more (0 is the master's id): add --broker-id 1");
    if (masterAddress === undefined && !flags.has('namesrv'))
      throw new UsageError(
        "a SLAVE needs --master-address <host:port> (its master's --ha-port address), or --namesrv to look its master up there by --broker-name",
      );
    if (masterAddress !== undefined && !/^[^\s:]{1,253}:\d{1,5}$/.test(masterAddress))
      throw new UsageError(
        `--master-address takes host:port (the master's --ha-port), not "${masterAddress}"`,
      );
    if (flags.has('sync-flush-timeout-ms'))
      throw new UsageError("--sync-flush-timeout-ms is a SYNC_MASTER's option: drop it on a SLAVE");
    if (masterAddress !== undefined && flags.has('master-lookup-timeout-ms'))
      throw new UsageError(
        '--master-lookup-timeout-ms is for a SLAVE without --master-address: drop one of them',
      );
  } else {
    if (brokerId !== 0)
      throw new UsageError(
        `a ${role} has --broker-id 0 (ids 1 and up are slaves): drop --broker-id or use --role SLAVE`,
      );
    if (masterAddress !== undefined)
      throw new UsageError(
        `--master-address is a SLAVE's option: drop it, or use --role SLAVE on this broker`,
      );
    if (flags.has('slave-sync-interval-ms'))
      throw new UsageError("--slave-sync-interval-ms is a SLAVE's option: drop it on a master");
    if (flags.has('master-lookup-timeout-ms'))
      throw new UsageError("--master-lookup-timeout-ms is a SLAVE's option: drop it on a master");
    if (role === 'ASYNC_MASTER' && flags.has('sync-flush-timeout-ms'))
      throw new UsageError('--sync-flush-timeout-ms applies to --role SYNC_MASTER only');
  }
  const haPort = parsePort(flags.get('ha-port'), port === 0 ? 0 : port + 1, '--ha-port');
  if (haPort !== 0 && haPort === port)
    throw new UsageError(`--ha-port ${haPort} is the client --port: choose another`);
  return {
    role,
    listensForSlaves: role !== 'SLAVE' && (flags.has('role') || flags.has('ha-port')),
    brokerId,
    haPort,
    masterAddress,
    syncFlushTimeoutMs: optionalMs(flags, 'sync-flush-timeout-ms'),
  };
}

/** A master's slaves and their largest lag, per slave too; a slave's lag behind its master. */
function replicationStats(
  ha: HaMaster | undefined,
  slave: HaSlave | undefined,
): Record<string, number | boolean> {
  if (slave) {
    const s = slave.state();
    return {
      replicationConnected: s.connected,
      replicationLagBytes: s.lagBytes,
      replicationMaxOffset: s.maxOffset,
    };
  }
  if (!ha) return {};
  const slaves = ha.slaves();
  const out: Record<string, number | boolean> = {
    replicationSlaves: slaves.length,
    replicationLagBytes: Math.max(0, ...slaves.map((s) => s.lagBytes)),
  };
  for (const s of slaves) out[`replicationLagBytes@${s.address}`] = s.lagBytes;
  return out;
}

/** Whether something accepts TCP connections at `address` within a second (an old master still up). */
function answers(address: string): Promise<boolean> {
  const at = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const socket = net.connect({ host: address.slice(0, at), port: Number(address.slice(at + 1)) });
    const done = (up: boolean): void => {
      socket.destroy();
      resolve(up);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function describeHaEvent(e: HaMasterEvent | HaSlaveEvent): string {
  switch (e.type) {
    case 'ha.slave.joined':
      return `replication: slave ${e.address} joined from offset ${e.fromOffset}`;
    case 'ha.slave.refused':
      return `WARN replication: slave ${e.address} refused (${e.error.code}): ${e.error.message}`;
    case 'ha.slave.left':
      return `replication: slave ${e.address} left: ${e.reason}`;
    case 'ha.master.joined':
      return `replication: joined master ${e.master} from offset ${e.fromOffset} (master at ${e.masterMaxOffset})`;
    case 'ha.master.lost':
      return `WARN replication: link to master ${e.master} failed (${e.error.code}): ${e.error.message}`;
  }
}
