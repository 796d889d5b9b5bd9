// A relay in a child process that SIGKILLs itself after the broker stored a message and before
// the relay marks the row published: the crash window of an outbox relay, made deterministic by a
// fault-injecting publisher (test-only; the relay itself has no crash hook).
// Env: DIALECT (pg | sqlite | mysql), DB (connection string or file), TABLE, BROKER_NAME, BROKER (host:port), LEASE_MS.
import Database from 'better-sqlite3';
import { createPool } from 'mysql2/promise';
import { Pool } from 'pg';
import { Producer } from '../../src/client/producer';
import type { ProducerMessage } from '../../src/client/producer';
import { TcpTransport } from '../../src/client/tcp-transport';
import { OutboxRelay } from '../../src/outbox/outbox-relay';
import { MysqlOutbox } from '../../src/outbox/mysql-outbox';
import { PostgresOutbox } from '../../src/outbox/postgres-outbox';
import { SqliteOutbox } from '../../src/outbox/sqlite-outbox';

async function main(): Promise<void> {
  const env = (name: string): string => {
    const value = process.env[name];
    if (value === undefined) throw new Error(`missing env ${name}`);
    return value;
  };
  const transport = new TcpTransport({ brokers: { [env('BROKER_NAME')]: env('BROKER') } });
  const producer = new Producer({ group: 'crash-relay', transport });
  await producer.start();
  const publisher = {
    async send(message: ProducerMessage) {
      const result = await producer.send(message);
      process.stdout.write(`stored ${result.msgId}\n`, () => process.kill(process.pid, 'SIGKILL'));
      // Never settles: the process dies before the relay could mark the row.
      return new Promise<never>(() => undefined);
    },
  };
  const dialect = env('DIALECT');
  const outbox =
    dialect === 'pg'
      ? new PostgresOutbox({ pool: new Pool({ connectionString: env('DB') }), table: env('TABLE') })
      : dialect === 'mysql'
        ? new MysqlOutbox({ pool: createPool({ uri: env('DB') }), table: env('TABLE') })
        : new SqliteOutbox({ db: new Database(env('DB')), table: env('TABLE') });
  const relay = new OutboxRelay({
    outbox,
    producer: publisher,
    batchSize: 1,
    leaseMs: Number(env('LEASE_MS')),
  });
  await relay.runOnce();
  process.stderr.write('the relay marked the row: the crash hook did not run\n');
  process.exit(3);
}

main().catch((error: unknown) => {
  process.stderr.write(`${String((error as Error)?.stack ?? error)}\n`);
  process.exit(2);
});
