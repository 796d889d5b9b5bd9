import { type Clock, systemClock } from '../common/clock';
import { RocketError } from '../common/errors';
import { WIRE_NAME_SERVER_OPERATIONS } from '../remoting/operation-codecs';
import { RemotingClient, type RemotingClientOptions } from '../remoting/remoting-client';

/**
 * How long a slave started without `--master-address` waits at bootstrap for its master to appear
 * on the name servers: 30 s, one registration period of the master (RocketMQ's
 * `registerNameServerPeriod`), so a master and slave started together find each other.
 */
export const DEFAULT_MASTER_LOOKUP_TIMEOUT_MS = 30_000;
/** Pause between two looks at the name servers while the master is not registered yet. */
export const MASTER_LOOKUP_RETRY_MS = 1_000;

export interface MasterLookupOptions {
  nameServers: readonly string[];
  clusterName: string;
  brokerName: string;
  /** Default {@link DEFAULT_MASTER_LOOKUP_TIMEOUT_MS}. */
  timeoutMs?: number;
  clock?: Clock;
  remoting?: Omit<RemotingClientOptions, 'onServerRequest' | 'clock'>;
}

/**
 * The HA address (`host:port`) of the master (broker id 0) of `brokerName` in `clusterName`, as
 * it registered it with the name servers (RocketMQ's slave learns `haServerAddr` the same way).
 * Asks each name server in turn, again every {@link MASTER_LOOKUP_RETRY_MS} until one knows it;
 * after `timeoutMs`, `BROKER_UNAVAILABLE` naming the fix.
 */
export async function lookUpMasterHaAddress(options: MasterLookupOptions): Promise<string> {
  const clock = options.clock ?? systemClock;
  const timeoutMs = options.timeoutMs ?? DEFAULT_MASTER_LOOKUP_TIMEOUT_MS;
  const client = new RemotingClient({ ...options.remoting, clock });
  const op = WIRE_NAME_SERVER_OPERATIONS.clusterInfo;
  const deadline = clock.now() + timeoutMs;
  let seen: string[] = [];
  try {
    for (;;) {
      seen = [];
      for (const nameServer of options.nameServers) {
        try {
          const info = op.response.decode(
            await client.request(nameServer, op.code, op.request.encode(undefined)),
          );
          const master = info.clusters
            .find((c) => c.clusterName === options.clusterName)
            ?.brokers.find((b) => b.brokerName === options.brokerName && b.brokerId === 0);
          if (master?.haAddress !== undefined) return master.haAddress;
          seen.push(
            master === undefined
              ? `${nameServer}: no master registered`
              : `${nameServer}: the master registered no HA address (started without --role or --ha-port?)`,
          );
        } catch (error) {
          seen.push(`${nameServer}: ${(error as Error).message}`);
        }
      }
      if (clock.now() + MASTER_LOOKUP_RETRY_MS > deadline) break;
      await new Promise<void>((resolve) => clock.setTimer(MASTER_LOOKUP_RETRY_MS, resolve));
    }
  } finally {
    await client.close();
  }
  throw new RocketError(
    'BROKER_UNAVAILABLE',
    `no master of broker "${options.brokerName}" (cluster ${options.clusterName}) with an HA address on the name servers ` +
      `within ${timeoutMs} ms (${seen.join('; ')}): start the master ` +
      `(with --role, and --namesrv) first, or give this slave --master-address <master host:ha-port>`,
  );
}
