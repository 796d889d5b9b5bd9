/**
 * What a broker tells its metrics about, as it happens: the cheap counters of the hot path. Gauges
 * (lag, delayed messages, disk use…) are not reported here; a metrics front end reads them from the
 * broker when it is scraped. An observer must be cheap and must not throw: it runs inside `send`
 * and `pull`. The prom-client implementation is `server/broker-metrics.ts`.
 */
export interface BrokerObserver {
  /** A producer's send of `messages` messages (`bytes` of bodies) to `topic` was stored, taking `seconds`. */
  sent(topic: string, messages: number, bytes: number, seconds: number): void;
  /** A pull or pop handed `messages` messages (`bytes` of bodies) of `topic` to a consumer. */
  delivered(topic: string, messages: number, bytes: number): void;
  /** A message of `group` ran out of attempts and was written to the group's dead-letter topic. */
  deadLettered(group: string): void;
  /** A send was refused by flow control, for `reason`. */
  rejected(reason: FlowControlReason): void;
}

/**
 * Why a send was refused with `BROKER_BUSY`: the disk is full (`DISK_FULL` from the store), too many
 * sends are being stored at once (`maxInFlightSends`), too many delayed messages wait
 * (`maxScheduledMessages`), too many transactions are unresolved (`maxPendingTransactions`).
 */
export type FlowControlReason =
  'disk-full' | 'in-flight-sends' | 'scheduled-messages' | 'pending-transactions';
