#!/usr/bin/env node
import * as path from 'node:path';
import { isRocketError } from '../common/errors';
import { FileStore } from '../store/file-store';
import type { FlushMode } from '../store/store-options';

const USAGE = `Usage: rocketnest <command> [options]

Commands:
  broker     Run a standalone broker on a durable data directory

Run "rocketnest <command> --help" for a command's options.`;

const BROKER_USAGE = `Usage: rocketnest broker [options]

Runs a broker process on a durable store until SIGTERM or SIGINT, then closes it cleanly
(pending appends drain, everything is flushed and checkpointed).

Options:
  --store-dir <dir>        Data directory, created when absent (default: ./data)
  --flush <async|sync>     Flush mode: async flushes every 500 ms, sync acknowledges after
                           fdatasync with group commit (default: async)
  --segment-size <bytes>   Commit-log segment size (default: 1073741824)
  -h, --help               Show this help`;

class UsageError extends Error {}

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
  const flags = parseFlags(args, ['store-dir', 'flush', 'segment-size']);
  if (flags.has('help')) {
    console.log(BROKER_USAGE);
    return;
  }
  const flush = flags.get('flush') ?? 'async';
  if (flush !== 'async' && flush !== 'sync')
    throw new UsageError(`--flush must be async or sync, not "${flush}"`);
  const segment = flags.get('segment-size');
  const dir = path.resolve(flags.get('store-dir') ?? 'data');
  const store = await FileStore.open({
    dir,
    flushMode: flush as FlushMode,
    segmentSizeBytes: segment === undefined ? undefined : Number(segment),
  });
  const { truncatedBytes, verifiedRecords, fromCheckpoint } = store.recovery;
  const range = store.commitLogRange();
  console.log(`rocketnest broker: store ${store.storeId} open at ${dir} (flush ${flush})`);
  console.log(
    `  recovered ${fromCheckpoint ? 'from checkpoint' : 'without checkpoint'}: ${verifiedRecords} records verified, ` +
      `${truncatedBytes} bytes truncated; commit log ${range.minOffset}..${range.maxOffset}, ${store.queues().length} queues`,
  );
  console.log('  press Ctrl+C (or send SIGTERM) to stop');
  await new Promise<void>((resolve) => {
    const keepAlive = setInterval(() => undefined, 1 << 30);
    const stop = (signal: string): void => {
      clearInterval(keepAlive);
      console.log(`rocketnest broker: ${signal} received, closing`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await store.close();
  console.log('rocketnest broker: closed cleanly');
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
