#!/usr/bin/env node
import * as path from 'node:path';
import { isRocketError } from '../common/errors';
import { Broker } from '../broker/broker';
import { FileStore } from '../store/file-store';
import { BrokerServer } from '../server/broker-server';
import type { FlushMode } from '../store/store-options';

const USAGE = `Usage: rocketnest <command> [options]

Commands:
  broker     Run a standalone broker on a durable data directory

Run "rocketnest <command> --help" for a command's options.`;

const BROKER_USAGE = `Usage: rocketnest broker [options]

Runs a broker on a durable store until SIGTERM or SIGINT, then closes it cleanly (pending
appends drain, offsets and timers are persisted, everything is flushed and checkpointed).
Topic configs and consumer offsets live in <store-dir>/config. Clients connect with
TcpTransport({ brokers: { 'broker-a': 'host:port' } }).

Options:
  --store-dir <dir>        Data directory, created when absent (default: ./data)
  --flush <async|sync>     Flush mode: async flushes every 500 ms, sync acknowledges after
                           fdatasync with group commit (default: async)
  --segment-size <bytes>   Commit-log segment size (default: 1073741824)
  --host <address>         Address to listen on (default: 127.0.0.1)
  --port <n>               TCP port for clients, 0 for any free one (default: 10911, RocketMQ's)
  --topics <list>          Topics to create at start if absent: name[:queues],… (e.g. orders:8,payments)
  -h, --help               Show this help`;

class UsageError extends Error {}

/** RocketMQ's broker listen port. */
const DEFAULT_BROKER_PORT = 10911;

function parseTopics(list: string | undefined): Array<{ topic: string; queueCount: number | undefined }> {
  if (list === undefined) return [];
  return list.split(',').map((item) => {
    const [topic, queues] = item.trim().split(':');
    const queueCount = queues === undefined ? undefined : Number(queues);
    if (!topic || (queueCount !== undefined && !Number.isInteger(queueCount))) {
      throw new UsageError(`--topics takes name[:queues],…; "${item}" is not one`);
    }
    return { topic, queueCount };
  });
}

function parseFlags(args: string[], known: string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '-h' || arg === '--help') {
      flags.set('help', 'true');
      continue;
    }
    const [name, inline] = arg.startsWith('--') ? arg.slice(2).split(/=(.*)/s, 2) : [undefined, undefined];
    if (!name || !known.includes(name)) throw new UsageError(`unknown option "${arg}"`);
    const value = inline ?? args[++i];
    if (value === undefined) throw new UsageError(`option --${name} needs a value`);
    flags.set(name, value);
  }
  return flags;
}

async function runBroker(args: string[]): Promise<void> {
  const flags = parseFlags(args, ['store-dir', 'flush', 'segment-size', 'host', 'port', 'topics']);
  if (flags.has('help')) {
    console.log(BROKER_USAGE);
    return;
  }
  const flush = flags.get('flush') ?? 'async';
  if (flush !== 'async' && flush !== 'sync')
    throw new UsageError(`--flush must be async or sync, not "${flush}"`);
  const segment = flags.get('segment-size');
  const port = Number(flags.get('port') ?? DEFAULT_BROKER_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`--port must be 0..65535, not "${flags.get('port')}"`);
  const host = flags.get('host') ?? '127.0.0.1';
  const topics = parseTopics(flags.get('topics'));
  const dir = path.resolve(flags.get('store-dir') ?? 'data');
  // Signals are handled from the start, so a stop during startup still closes cleanly; a second
  // signal while closing is acknowledged, not fatal: the close finishes what it started.
  let stopRequested: (signal: string) => void = () => undefined;
  const stopped = new Promise<string>((resolve) => (stopRequested = resolve));
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      console.log(`rocketnest broker: ${signal} received, already closing`);
      return;
    }
    stopping = true;
    stopRequested(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const keepAlive = setInterval(() => undefined, 1 << 30);
  try {
    const store = await FileStore.open({
      dir,
      flushMode: flush as FlushMode,
      segmentSizeBytes: segment === undefined ? undefined : Number(segment),
    });
    const broker = await Broker.start({ store, configDir: path.join(dir, 'config') }).catch(
      async (error: unknown) => {
        await store.close();
        throw error;
      },
    );
    for (const { topic, queueCount } of topics) {
      if (!broker.getTopic(topic)) broker.createTopic({ topic, queueCount });
    }
    const server = await BrokerServer.start({ broker, host, port }).catch(async (error: unknown) => {
      await broker.close();
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
    console.log(`  listening on ${listening.host}:${listening.port}`);
    console.log('  press Ctrl+C (or send SIGTERM) to stop');
    const signal = await stopped;
    console.log(`rocketnest broker: ${signal} received, closing`);
    // the broker first: it answers parked long polls, so the server's close does not wait for them
    await broker.close();
    await server.close();
    await store.close();
    console.log('rocketnest broker: closed cleanly');
  } finally {
    clearInterval(keepAlive);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'broker':
        await runBroker(rest);
        return 0;
      case undefined:
      case '-h':
      case '--help':
        console.log(USAGE);
        return command === undefined ? 1 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`rocketnest: ${error.message}\n\n${command === 'broker' ? BROKER_USAGE : USAGE}`);
      return 2;
    }
    if (isRocketError(error)) {
      console.error(`rocketnest: ${error.code}: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
