import type { Broker } from '../broker/broker';
import { type Clock, type Timer, systemClock } from '../common/clock';
import { intOption } from '../common/options';
import { WIRE_ADMIN_OPERATIONS } from '../remoting/operation-codecs';
import { RemotingClient, type RemotingClientOptions } from '../remoting/remoting-client';

/** How often a slave copies its master's topic configs, consumer offsets and delay progress: 10 s (RocketMQ's `SlaveSynchronize` period). */
export const DEFAULT_SLAVE_SYNC_INTERVAL_MS = 10_000;
/** How long one fetch of the master's state may take. */
export const SLAVE_SYNC_TIMEOUT_MS = 5_000;

export interface SlaveSyncOptions {
  broker: Broker;
  /** The master's client (TCP) address, as its HA welcome told it ('' or undefined: not known yet). */
  masterAddress: () => string | undefined;
  /** Default {@link DEFAULT_SLAVE_SYNC_INTERVAL_MS}. */
  intervalMs?: number;
  clock?: Clock;
  /** A fetch that failed (tried again at the next period). */
  onError?: (error: unknown) => void;
  /** A fetch that changed something. */
  onSynced?: (changed: { topics: number; offsets: number; delayProgress: boolean }) => void;
  remoting?: Omit<RemotingClientOptions, 'onServerRequest' | 'clock'>;
}

/**
 * A slave's copy of its master's state besides the commit log (RocketMQ's `SlaveSynchronize`):
 * every `intervalMs` it fetches the master's topic configs, consumer offsets and delay progress
 * over the admin operation `replicaSync` and applies them, so consumers reading from the slave see
 * the master's topics and resume from the master's offsets, and a promoted slave delivers only the
 * delayed messages its master had not.
 */
export class SlaveSync {
  private readonly client: RemotingClient;
  private readonly clock: Clock;
  private readonly intervalMs: number;
  private timer: Timer | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: SlaveSyncOptions) {
    this.clock = options.clock ?? systemClock;
    this.intervalMs = intOption(
      'slave sync',
      'intervalMs',
      options.intervalMs,
      DEFAULT_SLAVE_SYNC_INTERVAL_MS,
      10,
    );
    this.client = new RemotingClient({ ...options.remoting, clock: this.clock });
  }

  start(): void {
    this.arm(0);
  }

  private arm(delayMs: number): void {
    this.timer = this.clock.setTimer(delayMs, () => {
      if (this.closed) return;
      this.running = this.syncOnce().finally(() => {
        this.running = undefined;
        if (!this.closed) this.arm(this.intervalMs);
      });
    });
  }

  /** One fetch and apply; errors go to `onError`. */
  async syncOnce(): Promise<void> {
    const address = this.options.masterAddress();
    if (!address) return;
    try {
      const op = WIRE_ADMIN_OPERATIONS.replicaSync;
      const response = await this.client.request(address, op.code, op.request.encode({}), {
        timeoutMs: SLAVE_SYNC_TIMEOUT_MS,
      });
      if (this.closed) return;
      const changed = this.options.broker.applyReplicaSync(op.response.decode(response));
      if (changed.topics > 0 || changed.offsets > 0 || changed.delayProgress)
        this.options.onSynced?.(changed);
    } catch (error) {
      if (!this.closed) this.options.onError?.(error);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    await this.running?.catch(() => undefined);
    await this.client.close();
  }
}
