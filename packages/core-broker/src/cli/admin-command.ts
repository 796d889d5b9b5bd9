import { DEFAULT_QUEUE_COUNT } from '../broker/broker-options';
import { RocketAdmin } from '../client/admin-client';
import type { TcpTransportOptions } from '../client/tcp-transport';
import { RocketError } from '../common/errors';
import { Permission, type TopicInput } from '../message/protocol';
import { UsageError, parseAddressList, parseFlags } from './args';

const CONNECTION = `Connection (one of):
  --namesrv <host:port,…>  Name servers of a cluster
  --broker <host:port>     A standalone broker (its name is asked of it, or give --broker-name)

Common options:
  --json                   Print JSON instead of a table
  --timeout <ms>           Time each request may take (default: 3000)
  --access-key <key>       Sign requests for a broker with an ACL (an admin account); the
                           secret comes from --secret-key or the ROCKETNEST_SECRET_KEY variable
  --secret-key <secret>    Secret of --access-key
  --tls                    Connect with TLS, trusting the system CAs
  --tls-ca <file>          Connect with TLS, trusting this PEM CA bundle
  -h, --help               Show this help`;

interface Command {
  summary: string;
  /** Options of its own, each with its help line. */
  options: Array<[flag: string, help: string, required?: boolean]>;
  run(admin: RocketAdmin, flags: Map<string, string>): Promise<unknown>;
  /** Rows for the table view of the result. */
  table(result: never): Array<Record<string, unknown>>;
}

const COMMANDS: Record<string, Command> = {
  'cluster list': {
    summary: 'Brokers by cluster, with address, last registration and replication lag (bytes)',
    options: [],
    run: (admin) => admin.clusterReplication(),
    table: (info: Awaited<ReturnType<RocketAdmin['clusterReplication']>>) =>
      info.clusters.flatMap((c) =>
        c.brokers.map((b) => ({
          cluster: c.clusterName,
          broker: b.brokerName,
          id: b.brokerId,
          address: b.address,
          topics: b.topicCount,
          slaves: b.slaves ?? '-',
          lag: b.lagBytes ?? '-',
          registered: b.lastUpdateMs === 0 ? '-' : new Date(b.lastUpdateMs).toISOString(),
        })),
      ),
  },
  'topic list': {
    summary: 'Topics of every broker, with queue counts and permissions',
    options: [],
    run: (admin) => admin.listTopics(),
    table: (results: Awaited<ReturnType<RocketAdmin['listTopics']>>) =>
      results.flatMap(({ brokerName, result }) =>
        result.map((t) => ({
          broker: brokerName,
          topic: t.topic,
          read: t.readQueueCount,
          write: t.writeQueueCount,
          perm: permissionName(t.permission),
          fifo: t.fifo,
        })),
      ),
  },
  'topic route': {
    summary: 'Which brokers serve a topic, with their queues and addresses',
    options: [['topic', 'Topic name', true]],
    run: (admin, f) => admin.topicRoute(f.get('topic')!),
    table: (route: Awaited<ReturnType<RocketAdmin['topicRoute']>>) =>
      route.brokers.map((b) => ({
        broker: b.brokerName,
        address: b.address ?? '-',
        read: b.readQueueCount,
        write: b.writeQueueCount,
        perm: permissionName(b.permission),
        fifo: b.fifo,
      })),
  },
  'topic create': {
    summary: 'Create a topic on every broker, or on --brokers (on a broker that has it: as topic update)',
    options: topicOptions(),
    run: (admin, f) => admin.updateTopic(topicInput(f), brokerList(f)),
    table: topicResultTable,
  },
  'topic update': {
    summary:
      'Change only the given fields of a topic on every broker, or on --brokers (creates it where absent)',
    options: topicOptions(),
    run: (admin, f) => admin.updateTopic(topicInput(f), brokerList(f)),
    table: topicResultTable,
  },
  'store stats': {
    summary:
      'Each broker store: disk use, DISK_FULL refusals, segments deleted (forced: unexpired), skipped entries',
    options: [],
    run: (admin) => admin.storeStats(),
    table: (results: Awaited<ReturnType<RocketAdmin['storeStats']>>) =>
      results.map(({ brokerName, result: s }) => ({
        broker: brokerName,
        'disk used': typeof s.diskUsedRatio === 'number' ? `${(s.diskUsedRatio * 100).toFixed(1)}%` : '-',
        full: s.diskFull ?? '-',
        'disk-full refusals': s.diskFullRejections ?? '-',
        'expired segments': s.expiredSegmentsDeleted ?? '-',
        'forced segments': s.forcedSegmentsDeleted ?? '-',
        'forced messages': s.forcedMessagesDeleted ?? '-',
        'skipped entries': s.skippedEntries ?? '-',
        'rebuilt entries': s.rebuiltEntries ?? '-',
        'key-index files': s.keyIndexFiles ?? '-',
        'key-index heap bytes': s.keyIndexHeapBytes ?? '-',
      })),
  },
  'group progress': {
    summary: "A consumer group's committed offset and lag per queue",
    options: [
      ['group', 'Consumer group', true],
      ['topic', 'Only this topic (and every queue of it, committed or not)'],
    ],
    run: (admin, f) => admin.consumeStats(f.get('group')!, f.get('topic')),
    table: (rows: Awaited<ReturnType<RocketAdmin['consumeStats']>>) => {
      const total = rows.reduce((sum, r) => sum + r.lag, 0);
      return [
        ...rows.map((r) => ({
          broker: r.brokerName,
          topic: r.topic,
          queue: r.queueId,
          'broker offset': r.brokerOffset,
          'consumer offset': r.consumerOffset ?? '-',
          lag: r.lag,
        })),
        { broker: 'total', topic: '', queue: '', 'broker offset': '', 'consumer offset': '', lag: total },
      ];
    },
  },
  'message get': {
    summary: 'A message by its id (body shown as UTF-8 when printable)',
    options: [['id', 'Message id', true]],
    run: async (admin, f) => {
      const found = await admin.viewMessage(f.get('id')!);
      if (!found) throw new RocketError('MESSAGE_NOT_FOUND', `no broker holds message ${f.get('id')}`);
      return found;
    },
    table: (m: NonNullable<Awaited<ReturnType<RocketAdmin['viewMessage']>>>) => [messageRow(m)],
  },
  'message query': {
    summary: 'Messages of a topic by key, oldest first',
    options: [
      ['topic', 'Topic name', true],
      ['key', 'Message key', true],
      ['max', 'Most messages shown (default: 32)'],
    ],
    run: (admin, f) => admin.queryByKey(f.get('topic')!, f.get('key')!, positiveInt(f, 'max') ?? 32),
    table: (messages: Awaited<ReturnType<RocketAdmin['queryByKey']>>) => messages.map(messageRow),
  },
  'offset reset': {
    summary: "Move a group's offsets on a topic to a point in time (consumers are told at once)",
    options: [
      ['group', 'Consumer group', true],
      ['topic', 'Topic name', true],
      ['time', 'ISO 8601 time, epoch ms, or a time ago such as -30m, -2h, -1d', true],
    ],
    run: (admin, f) => admin.resetOffsetByTime(f.get('group')!, f.get('topic')!, parseTime(f.get('time')!)),
    table: (rows: Awaited<ReturnType<RocketAdmin['resetOffsetByTime']>>) =>
      rows.map((r) => ({ broker: r.brokerName, queue: r.queueId, offset: r.offset })),
  },
  'broker promote': {
    summary:
      'Make the slave given by --broker the master of its broker name (refused while its master answers, unless --force)',
    options: [
      ['role', 'ASYNC_MASTER (default) or SYNC_MASTER'],
      ['force', 'Promote although the old master still answers (switch)'],
    ],
    run: (admin, f) => {
      if (!f.has('broker'))
        throw new UsageError('admin broker promote names the slave with --broker host:port');
      const role = f.get('role');
      if (role !== undefined && role !== 'ASYNC_MASTER' && role !== 'SYNC_MASTER')
        throw new UsageError(`--role must be ASYNC_MASTER or SYNC_MASTER, not "${role}"`);
      return admin.promote({ force: f.has('force'), ...(role === undefined ? {} : { role }) });
    },
    table: (r: Awaited<ReturnType<RocketAdmin['promote']>>) => [
      {
        broker: r.brokerName,
        role: r.result.role,
        'max offset': r.result.maxOffset,
        'ha address': r.result.haAddress,
      },
    ],
  },
  'dlq resend': {
    summary: 'Re-send a dead-lettered message of a group to its original topic',
    options: [
      ['group', 'Consumer group whose dead-letter topic holds the message', true],
      ['id', 'Message id in the dead-letter topic', true],
    ],
    run: (admin, f) => admin.resendDeadLetter(f.get('group')!, f.get('id')!),
    table: (r: Awaited<ReturnType<RocketAdmin['resendDeadLetter']>>) => [
      { broker: r.brokerName, 'new msgId': r.msgId, topic: r.topic, queue: r.queueId },
    ],
  },
};

export const ADMIN_USAGE = `Usage: rocketnest admin <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(16)} ${c.summary}`)
  .join('\n')}

Run "rocketnest admin <command> --help" for a command's options.

${CONNECTION}`;

function commandUsage(name: string, command: Command): string {
  const lines = command.options.map(
    ([flag, help, required]) => `  --${flag} <value>`.padEnd(27) + `${help}${required ? ' (required)' : ''}`,
  );
  return `Usage: rocketnest admin ${name} [options]

${command.summary}.
${lines.length > 0 ? `\nOptions:\n${lines.join('\n')}\n` : ''}
${CONNECTION}`;
}

/** Thrown for a usage mistake in one admin command: printed with that command's usage. */
class AdminUsageError extends UsageError {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
  }
}

export function adminUsageOf(error: unknown): string | undefined {
  return error instanceof AdminUsageError ? error.usage : undefined;
}

export async function runAdmin(args: string[]): Promise<void> {
  const words: string[] = [];
  while (words.length < 2 && args[0] !== undefined && !args[0].startsWith('-')) words.push(args.shift()!);
  const name = words.join(' ');
  if (words.length === 0) {
    if (args.includes('--help') || args.includes('-h')) {
      console.log(ADMIN_USAGE);
      return;
    }
    throw new UsageError('admin needs a command');
  }
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`unknown admin command "${name}"`);
  const usage = commandUsage(name, command);
  let flags: Map<string, string>;
  try {
    flags = parseFlags(
      args,
      [
        'namesrv',
        'broker',
        'broker-name',
        'timeout',
        'access-key',
        'secret-key',
        'tls-ca',
        ...command.options.map(([flag]) => flag),
      ],
      ['json', 'tls', 'force'],
    );
  } catch (error) {
    throw new AdminUsageError((error as Error).message, usage);
  }
  if (flags.has('help')) {
    console.log(usage);
    return;
  }
  for (const [flag, , required] of command.options) {
    if (required && !flags.has(flag)) throw new AdminUsageError(`admin ${name} needs --${flag}`, usage);
  }
  let admin: RocketAdmin;
  try {
    admin = new RocketAdmin(connection(flags));
  } catch (error) {
    if (error instanceof UsageError) throw new AdminUsageError(error.message, usage);
    throw error;
  }
  try {
    let result: unknown;
    try {
      result = await command.run(admin, flags);
    } catch (error) {
      if (error instanceof UsageError && !(error instanceof AdminUsageError)) {
        throw new AdminUsageError(error.message, usage);
      }
      throw error;
    }
    if (flags.has('json')) console.log(JSON.stringify(result, null, 2));
    else console.log(formatTable(command.table(result as never)));
  } finally {
    await admin.close();
  }
}

function connection(flags: Map<string, string>): TcpTransportOptions {
  const namesrv = flags.get('namesrv');
  const broker = flags.get('broker');
  const timeout = positiveInt(flags, 'timeout');
  const base: TcpTransportOptions = timeout === undefined ? {} : { requestTimeoutMs: timeout };
  const accessKey = flags.get('access-key');
  const secretKey = flags.get('secret-key') ?? (process.env.ROCKETNEST_SECRET_KEY || undefined);
  if (accessKey !== undefined) {
    if (secretKey === undefined) {
      throw new UsageError('--access-key needs --secret-key or the ROCKETNEST_SECRET_KEY variable');
    }
    base.credentials = { accessKey, secretKey };
  } else if (flags.has('secret-key')) {
    throw new UsageError('--secret-key needs --access-key');
  }
  const ca = flags.get('tls-ca');
  if (ca !== undefined) base.tls = { caFile: ca };
  else if (flags.has('tls')) base.tls = true;
  if ((namesrv === undefined) === (broker === undefined)) {
    throw new UsageError('give either --namesrv (a cluster) or --broker (a standalone broker)');
  }
  if (namesrv !== undefined) return { ...base, nameServers: parseAddressList('--namesrv', namesrv) };
  const [address] = parseAddressList('--broker', broker!);
  // without --broker-name the broker is asked for its name
  const name = flags.get('broker-name');
  return { ...base, brokers: name === undefined ? [address!] : { [name]: address! } };
}

function topicOptions(): Command['options'] {
  return [
    ['topic', 'Topic name', true],
    [
      'queues',
      `Read and write queue count (new topic default: the broker's defaultQueueCount, ${DEFAULT_QUEUE_COUNT})`,
    ],
    ['read-queues', 'Queues consumers read; refused below --write-queues or below a queue holding messages'],
    ['write-queues', 'Queues producers write (shrink this first to take queues out of service)'],
    ['perm', 'rw, r, w or deny (new topic default: rw)'],
    ['fifo', 'true for a FIFO topic (new topic default: false)'],
    ['brokers', 'Only these brokers: name,… (default: every master)'],
  ];
}

function topicInput(f: Map<string, string>): TopicInput {
  const input: TopicInput = { topic: f.get('topic')! };
  const queues = positiveInt(f, 'queues');
  const read = positiveInt(f, 'read-queues');
  const write = positiveInt(f, 'write-queues');
  if (queues !== undefined) input.queueCount = queues;
  if (read !== undefined) input.readQueueCount = read;
  if (write !== undefined) input.writeQueueCount = write;
  const perm = f.get('perm');
  if (perm !== undefined) {
    const permissions: Record<string, number> = {
      rw: Permission.READ_WRITE,
      r: Permission.READ,
      w: Permission.WRITE,
      deny: Permission.DENY,
    };
    const value = permissions[perm.toLowerCase()];
    if (value === undefined) throw new UsageError(`--perm must be rw, r, w or deny, not "${perm}"`);
    input.permission = value;
  }
  const fifo = f.get('fifo');
  if (fifo !== undefined) {
    if (fifo !== 'true' && fifo !== 'false')
      throw new UsageError(`--fifo must be true or false, not "${fifo}"`);
    input.fifo = fifo === 'true';
  }
  return input;
}

function brokerList(f: Map<string, string>): string[] | undefined {
  const list = f.get('brokers');
  return list === undefined
    ? undefined
    : list
        .split(',')
        .map((b) => b.trim())
        .filter((b) => b !== '');
}

function topicResultTable(
  results: Awaited<ReturnType<RocketAdmin['updateTopic']>>,
): Array<Record<string, unknown>> {
  return results.map(({ brokerName, result: t }) => ({
    broker: brokerName,
    topic: t.topic,
    read: t.readQueueCount,
    write: t.writeQueueCount,
    perm: permissionName(t.permission),
    fifo: t.fifo,
  }));
}

function positiveInt(f: Map<string, string>, flag: string): number | undefined {
  const value = f.get(flag);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new UsageError(`--${flag} must be a positive integer, not "${value}"`);
  return n;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** ISO 8601, epoch ms, or `-<n><s|m|h|d>` (that long ago). */
export function parseTime(value: string, now = Date.now()): number {
  const ago = /^-(\d+)([smhd])$/.exec(value);
  if (ago) return now - Number(ago[1]) * UNIT_MS[ago[2]!]!;
  if (/^\d+$/.test(value)) return Number(value);
  const parsed = Date.parse(value);
  if (Number.isNaN(parsed) || !/^\d{4}-\d{2}-\d{2}/.test(value)) {
    throw new UsageError(
      `--time must be ISO 8601 (2026-11-25T10:00:00Z), epoch ms, or -30m/-2h/-1d; not "${value}"`,
    );
  }
  return parsed;
}

function permissionName(permission: number): string {
  const read = (permission & Permission.READ) !== 0;
  const write = (permission & Permission.WRITE) !== 0;
  return read && write ? 'rw' : read ? 'r' : write ? 'w' : 'deny';
}

function messageRow(
  m: NonNullable<Awaited<ReturnType<RocketAdmin['viewMessage']>>>,
): Record<string, unknown> {
  const body = Buffer.from(m.bodyBase64, 'base64');
  const text = body.toString('utf8');
  const printable = ![...text].some((c) => {
    const code = c.codePointAt(0)!;
    return (code < 0x20 && c !== '\n' && c !== '\t' && c !== '\r') || code === 0xfffd;
  });
  return {
    msgId: m.msgId,
    broker: m.brokerName,
    topic: m.topic,
    queue: m.queueId,
    offset: m.queueOffset,
    tag: m.tag ?? '-',
    keys: m.keys.join(' ') || '-',
    stored: new Date(m.storeTimestampMs).toISOString(),
    body: printable ? (text.length > 80 ? `${text.slice(0, 77)}...` : text) : `<${body.length} bytes>`,
  };
}

/** Rows as aligned columns under a header; "(none)" when there are none. */
export function formatTable(rows: Array<Record<string, unknown>>): string {
  if (rows.length === 0) return '(none)';
  const columns = Object.keys(rows[0]!);
  const cells = rows.map((r) => columns.map((c) => String(r[c] ?? '')));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]): string =>
    values
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(columns), ...cells.map(line)].join('\n');
}
