import type { Broker } from '../broker/broker';
import type { Timer } from '../common/clock';
import { decodeGrpcReceiptHandle, encodeGrpcReceiptHandle } from '../rocketmq5/receipt-handle';

/** Invisible time each renewal gives a message (RocketMQ proxy `renewSliceTimeMillis`). */
export const RENEW_SLICE_MS = 60_000;
/** A handle is renewed once its invisible time has less than this left (RocketMQ proxy `renewAheadTimeMillis`). */
export const RENEW_AHEAD_MS = 10_000;
/** Longest a message is kept invisible by renewals since its delivery (RocketMQ proxy `renewMaxTimeMillis`). */
export const RENEW_MAX_MS = 3 * 3600_000;
/** How often the handles are looked over (RocketMQ proxy `renewSchedulePeriodMillis`, 5 s; shorter here). */
export const RENEW_SCAN_INTERVAL_MS = 1_000;
/**
 * Most handles renewed at once, over every client. A delivery beyond it is not renewed: it keeps its
 * first invisible time, as without `auto_renew`.
 */
export const MAX_RENEWED_HANDLES = 65_536;

interface Renewed {
  clientId: string;
  group: string;
  topic: string;
  /** The handle as it stands now (the client keeps the one it was given). */
  current: string;
  deadlineMs: number;
  renewUntilMs: number;
  renewing: boolean;
}

/**
 * Keeps the messages a push consumer is still handling invisible, as the RocketMQ 5 proxy does for
 * a receive with `auto_renew`: shortly before a delivery's invisible time runs out, its invisible
 * time is changed to {@link RENEW_SLICE_MS} more, until the client acks it, changes it itself,
 * forwards it to the DLQ or goes away — terminates, or its Telemetry stream closes (then the
 * message is delivered again once the last renewal lapses). Each renewal gives the broker a new handle; the client keeps acking with the handle it
 * received, so {@link resolve} maps that one to the current one.
 */
export class HandleRenewal {
  private readonly handles = new Map<string, Renewed>();
  private timer: Timer | undefined;
  private closed = false;

  constructor(
    private readonly broker: Broker,
    /** Whether the client is still connected (its handles are dropped once it is not). */
    private readonly clientAlive: (clientId: string) => boolean,
  ) {}

  get size(): number {
    return this.handles.size;
  }

  /** Starts renewing a delivery made with `auto_renew` whose invisible time ends at `deadlineMs`. */
  track(clientId: string, group: string, topic: string, handle: string, deadlineMs: number): void {
    if (this.closed || this.handles.size >= MAX_RENEWED_HANDLES) return;
    const now = this.broker.options.clock.now();
    this.handles.set(handle, {
      clientId,
      group,
      topic,
      current: handle,
      deadlineMs,
      renewUntilMs: now + RENEW_MAX_MS,
      renewing: false,
    });
    this.arm();
  }

  /**
   * The handle to act on for `handle` as the client sent it: the latest renewal's, or `handle`
   * itself when it is not renewed. Renewal stops: the client now settles the message itself.
   */
  resolve(handle: string): string {
    const renewed = this.handles.get(handle);
    if (!renewed) return handle;
    this.handles.delete(handle);
    return renewed.current;
  }

  /** Stops renewing every handle of `clientId` (it terminated). */
  forget(clientId: string): void {
    for (const [key, renewed] of this.handles) if (renewed.clientId === clientId) this.handles.delete(key);
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.handles.clear();
  }

  private arm(): void {
    if (this.timer || this.closed || this.handles.size === 0) return;
    this.timer = this.broker.options.clock.setTimer(RENEW_SCAN_INTERVAL_MS, () => {
      this.timer = undefined;
      this.scan();
      this.arm();
    });
  }

  private scan(): void {
    const now = this.broker.options.clock.now();
    for (const [key, renewed] of this.handles) {
      if (renewed.renewing || renewed.deadlineMs - now > RENEW_AHEAD_MS) continue;
      if (now >= renewed.renewUntilMs || now >= renewed.deadlineMs || !this.clientAlive(renewed.clientId)) {
        // out of renewal time, already lapsed (the broker may deliver it again), or the client left
        this.handles.delete(key);
        continue;
      }
      renewed.renewing = true;
      void this.renew(key, renewed, now);
    }
  }

  private async renew(key: string, renewed: Renewed, now: number): Promise<void> {
    try {
      const handle = decodeGrpcReceiptHandle(renewed.current);
      if (!handle) throw new Error('unreachable: tracked handles were made by this broker');
      const { receiptHandle } = await this.broker.changeInvisibleTime({
        consumerGroup: renewed.group,
        topic: renewed.topic,
        receiptHandle: handle.brokerHandle,
        invisibleTimeMs: RENEW_SLICE_MS,
      });
      renewed.current = encodeGrpcReceiptHandle({ ...handle, brokerHandle: receiptHandle });
      renewed.deadlineMs = now + RENEW_SLICE_MS;
      renewed.renewing = false;
    } catch {
      // acked meanwhile through another path, or the broker closed: nothing left to renew
      this.handles.delete(key);
    }
  }
}
