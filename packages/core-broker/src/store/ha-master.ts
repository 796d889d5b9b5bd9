import * as net from 'node:net';
import { assert } from '../common/assert';
import { type Clock, type Timer, systemClock } from '../common/clock';
import { RocketError, isRocketError } from '../common/errors';
import { intOption } from '../common/options';
import type { FileStore } from './file-store';
import {
  DEFAULT_HA_TRANSFER_BATCH_BYTES,
  HaFrameReader,
  HaFrameType,
  type HaHello,
  encodeDataHeader,
  encodeRefuse,
  encodeWelcome,
} from './ha-protocol';

/** How long a sync master waits for a slave to hold a send: 5 s (RocketMQ `syncFlushTimeout`). */
export const DEFAULT_SYNC_FLUSH_TIMEOUT_MS = 5000;
/** A slave further behind than this does not count as available (RocketMQ `haMaxGapNotInSync` = 256 MiB). */
export const DEFAULT_HA_MAX_GAP_NOT_IN_SYNC_BYTES = 256 * 1024 * 1024;
/** A slave silent this long is dropped (RocketMQ `haHousekeepingInterval` = 20 s). */
export const DEFAULT_HA_HOUSEKEEPING_INTERVAL_MS = 20_000;
/** Most bytes a master ships to one slave beyond what it acknowledged: the replication window. */
export const HA_MAX_UNACKED_BYTES = 4 * 1024 * 1024;
/** Most slaves one master serves at once. */
export const MAX_HA_SLAVES = 16;
/** Most sends waiting for a slave at once (the broker's `maxInFlightSends` bounds them first). */
export const MAX_REPLICA_WAITERS = 100_000;

/**
 * What a sync master's send waited for (RocketMQ's `SendStatus`): the slave holds it, no slave
 * confirmed in time, or no slave was there to ask. Only `SEND_OK` means two copies.
 */
export type ReplicaStatus = 'SEND_OK' | 'FLUSH_SLAVE_TIMEOUT' | 'SLAVE_NOT_AVAILABLE';

/** What the broker's write door asks of replication (implemented by {@link HaMaster}). */
export interface ReplicaGate {
  /** Resolves once a slave holds every commit-log byte below `endOffset`, or says why not. */
  waitForReplica(endOffset: number): Promise<ReplicaStatus>;
}

/** One slave as its master sees it. */
export interface SlaveLink {
  address: string;
  /** Every byte below it is held by the slave (its flush policy met). */
  ackedOffset: number;
  /** Bytes of the master's log the slave does not hold yet. */
  lagBytes: number;
  connectedAtMs: number;
  lastReportMs: number;
}

export type HaMasterEvent =
  | { type: 'ha.slave.joined'; address: string; fromOffset: number }
  | { type: 'ha.slave.refused'; address: string; error: RocketError }
  | { type: 'ha.slave.left'; address: string; reason: string };

export interface HaMasterOptions {
  store: FileStore;
  host?: string;
  /** Port slaves connect to; 0 for any free one. (RocketMQ `haListenPort`) */
  port: number;
  /** Default {@link DEFAULT_SYNC_FLUSH_TIMEOUT_MS}. (RocketMQ `syncFlushTimeout`) */
  syncFlushTimeoutMs?: number;
  /** Default {@link DEFAULT_HA_MAX_GAP_NOT_IN_SYNC_BYTES}. (RocketMQ `haMaxGapNotInSync`) */
  maxGapNotInSyncBytes?: number;
  /** Default {@link DEFAULT_HA_TRANSFER_BATCH_BYTES}. (RocketMQ `haTransferBatchSize`) */
  transferBatchBytes?: number;
  /** Default {@link DEFAULT_HA_HOUSEKEEPING_INTERVAL_MS}. (RocketMQ `haHousekeepingInterval`) */
  housekeepingIntervalMs?: number;
  clock?: Clock;
  onEvent?: (event: HaMasterEvent) => void;
}

export type ResolvedHaMasterOptions = Readonly<Required<Omit<HaMasterOptions, 'onEvent'>>> & {
  onEvent: (event: HaMasterEvent) => void;
};

export function resolveHaMasterOptions(options: HaMasterOptions): ResolvedHaMasterOptions {
  const owner = 'ha master';
  return Object.freeze({
    store: options.store,
    host: options.host ?? '127.0.0.1',
    port: intOption(owner, 'port', options.port, 0, 0, 65_535),
    syncFlushTimeoutMs: intOption(
      owner,
      'syncFlushTimeoutMs',
      options.syncFlushTimeoutMs,
      DEFAULT_SYNC_FLUSH_TIMEOUT_MS,
      1,
    ),
    maxGapNotInSyncBytes: intOption(
      owner,
      'maxGapNotInSyncBytes',
      options.maxGapNotInSyncBytes,
      DEFAULT_HA_MAX_GAP_NOT_IN_SYNC_BYTES,
      0,
    ),
    transferBatchBytes: intOption(
      owner,
      'transferBatchBytes',
      options.transferBatchBytes,
      DEFAULT_HA_TRANSFER_BATCH_BYTES,
      1024,
      HA_MAX_UNACKED_BYTES,
    ),
    housekeepingIntervalMs: intOption(
      owner,
      'housekeepingIntervalMs',
      options.housekeepingIntervalMs,
      DEFAULT_HA_HOUSEKEEPING_INTERVAL_MS,
      100,
    ),
    clock: options.clock ?? systemClock,
    onEvent: options.onEvent ?? ((): void => undefined),
  });
}

interface Link {
  socket: net.Socket;
  address: string;
  /** Set once the slave's HELLO was accepted. */
  joined: boolean;
  sentOffset: number;
  ackedOffset: number;
  connectedAtMs: number;
  lastReportMs: number;
  closed: boolean;
  /** Wakes the pump (new data, an ack, a drained socket, the close). */
  wake: (() => void) | undefined;
}

interface Waiter {
  endOffset: number;
  resolve(status: ReplicaStatus): void;
  timer: Timer;
}

/**
 * The master's side of replication (RocketMQ's `HAService` and `HAConnection`): accepts slaves on
 * the HA port, checks where each one's log ends against its own, streams its commit log to each in
 * batches of `transferBatchBytes` with at most {@link HA_MAX_UNACKED_BYTES} unacknowledged (and
 * the socket's own back-pressure), and tells sync sends when a slave holds them.
 */
export class HaMaster implements ReplicaGate {
  private readonly links = new Set<Link>();
  private waiters: Waiter[] = [];
  private closed = false;
  private readonly unwatch: () => void;
  private housekeeping: Timer | undefined;
  private clientAddress = '';

  private constructor(
    private readonly options: ResolvedHaMasterOptions,
    private readonly server: net.Server,
  ) {
    this.unwatch = options.store.watchReadable(() => {
      for (const link of this.links) notify(link);
    });
    server.on('connection', (socket) => this.accept(socket));
    this.armHousekeeping();
  }

  static async start(options: HaMasterOptions): Promise<HaMaster> {
    const resolved = resolveHaMasterOptions(options);
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', (cause) =>
        reject(
          new RocketError(
            'INVALID_OPTION',
            `cannot listen for slaves on ${resolved.host}:${resolved.port} (${(cause as Error).message}); choose another --ha-port`,
            { cause },
          ),
        ),
      );
      server.listen(resolved.port, resolved.host, () => resolve());
    });
    return new HaMaster(resolved, server);
  }

  /** The broker's client address, told to slaves so they can fetch topic configs and offsets. */
  advertise(clientAddress: string): void {
    this.clientAddress = clientAddress;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The joined slaves, with their lag. */
  slaves(): SlaveLink[] {
    const max = this.options.store.commitLogRange().maxOffset;
    return [...this.links]
      .filter((l) => l.joined)
      .map((l) => ({
        address: l.address,
        ackedOffset: l.ackedOffset,
        lagBytes: Math.max(0, max - l.ackedOffset),
        connectedAtMs: l.connectedAtMs,
        lastReportMs: l.lastReportMs,
      }));
  }

  waitForReplica(endOffset: number): Promise<ReplicaStatus> {
    if (this.closed) return Promise.resolve('SLAVE_NOT_AVAILABLE');
    const max = this.options.store.commitLogRange().maxOffset;
    let available = false;
    for (const link of this.links) {
      if (!link.joined) continue;
      if (link.ackedOffset >= endOffset) return Promise.resolve('SEND_OK');
      if (max - link.ackedOffset <= this.options.maxGapNotInSyncBytes) available = true;
    }
    if (!available) return Promise.resolve('SLAVE_NOT_AVAILABLE');
    if (this.waiters.length >= MAX_REPLICA_WAITERS) {
      return Promise.reject(
        new RocketError(
          'BROKER_BUSY',
          `${this.waiters.length} sends are waiting for a slave (MAX_REPLICA_WAITERS); retry shortly`,
        ),
      );
    }
    return new Promise<ReplicaStatus>((resolve) => {
      const waiter: Waiter = {
        endOffset,
        resolve,
        timer: this.options.clock.setTimer(this.options.syncFlushTimeoutMs, () => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve('FLUSH_SLAVE_TIMEOUT');
        }),
      };
      this.waiters.push(waiter);
    });
  }

  private settleWaiters(ackedOffset: number): void {
    if (this.waiters.length === 0) return;
    const left: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.endOffset <= ackedOffset) {
        w.timer.cancel();
        w.resolve('SEND_OK');
      } else left.push(w);
    }
    this.waiters = left;
  }

  private accept(socket: net.Socket): void {
    const address = `${socket.remoteAddress}:${socket.remotePort}`;
    if (this.closed) {
      socket.destroy();
      return;
    }
    const now = this.options.clock.now();
    const link: Link = {
      socket,
      address,
      joined: false,
      sentOffset: 0,
      ackedOffset: 0,
      connectedAtMs: now,
      lastReportMs: now,
      closed: false,
      wake: undefined,
    };
    this.links.add(link);
    socket.setNoDelay(true);
    const reader = new HaFrameReader();
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const frame of reader.push(chunk)) {
          if (frame.type === HaFrameType.HELLO && !link.joined) this.join(link, frame);
          else if (frame.type === HaFrameType.REPORT && link.joined) this.report(link, frame.ackedOffset);
          else
            throw new RocketError('PROTOCOL_ERROR', `replication frame type ${frame.type} unexpected here`);
        }
      } catch (error) {
        this.refuse(link, error);
      }
    });
    socket.on('drain', () => notify(link));
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => this.drop(link, 'connection closed'));
  }

  private join(link: Link, hello: HaHello): void {
    const store = this.options.store;
    const { minOffset, maxOffset } = store.commitLogRange();
    const diverged = (why: string): RocketError =>
      new RocketError(
        'REPLICA_DIVERGED',
        `slave ${link.address}: ${why}; empty the slave's store directory to copy this master afresh`,
      );
    if (hello.segmentSize !== store.segmentSizeBytes)
      throw diverged(
        `its segment size ${hello.segmentSize} is not the master's ${store.segmentSizeBytes} (use the same --segment-size)`,
      );
    if (hello.maxOffset > maxOffset)
      throw diverged(`its log ends at ${hello.maxOffset}, past the master's end ${maxOffset}`);
    if (hello.maxOffset > 0) {
      if (hello.storeId !== store.storeId)
        throw diverged(`it holds store ${hello.storeId}, the master is store ${store.storeId}`);
      const digest = store.tailDigest(hello.maxOffset, hello.tailLength);
      if (digest === undefined && hello.maxOffset >= minOffset)
        throw diverged(`the master cannot read its bytes before offset ${hello.maxOffset} to compare`);
      if (digest && digest.crc !== hello.tailCrc)
        throw diverged(`the bytes before offset ${hello.maxOffset} differ from the master's`);
    }
    if (hello.maxOffset < minOffset) {
      throw new RocketError(
        'POSITION_EXPIRED',
        `slave ${link.address} ends at ${hello.maxOffset}, but the master's log starts at ${minOffset} (retention deleted the rest); ` +
          'empty the slave and copy the master while its log still starts at 0, or raise the retention',
      );
    }
    if ([...this.links].filter((l) => l.joined).length >= MAX_HA_SLAVES)
      throw new RocketError(
        'BROKER_BUSY',
        `the master serves ${MAX_HA_SLAVES} slaves already (MAX_HA_SLAVES)`,
      );
    link.joined = true;
    link.sentOffset = link.ackedOffset = hello.maxOffset;
    link.lastReportMs = this.options.clock.now();
    link.socket.write(
      encodeWelcome({
        segmentSize: store.segmentSizeBytes,
        minOffset,
        maxOffset,
        storeId: store.storeId,
        clientAddress: this.clientAddress,
      }),
    );
    this.options.onEvent({ type: 'ha.slave.joined', address: link.address, fromOffset: hello.maxOffset });
    void this.pump(link);
  }

  private report(link: Link, ackedOffset: number): void {
    if (ackedOffset > link.sentOffset || ackedOffset < link.ackedOffset) {
      throw new RocketError(
        'PROTOCOL_ERROR',
        `slave reports offset ${ackedOffset}, outside [${link.ackedOffset}, ${link.sentOffset}] it was sent`,
      );
    }
    link.ackedOffset = ackedOffset;
    link.lastReportMs = this.options.clock.now();
    this.settleWaiters(ackedOffset);
    notify(link);
  }

  /** Streams the log to one slave until the link closes. */
  private async pump(link: Link): Promise<void> {
    const store = this.options.store;
    const batch = this.options.transferBatchBytes;
    try {
      while (!link.closed && !this.closed) {
        const { minOffset, maxOffset } = store.commitLogRange();
        if (link.sentOffset < minOffset) {
          throw new RocketError(
            'POSITION_EXPIRED',
            `slave ${link.address} needs offset ${link.sentOffset}, deleted by retention (log starts at ${minOffset})`,
          );
        }
        const windowFull = link.sentOffset - link.ackedOffset >= HA_MAX_UNACKED_BYTES;
        const chunk =
          link.sentOffset < maxOffset && !windowFull && !link.socket.writableNeedDrain
            ? store.readReplicationChunk(link.sentOffset, batch)
            : undefined;
        if (!chunk) {
          await new Promise<void>((resolve) => (link.wake = resolve));
          continue;
        }
        assert(chunk.offset >= link.sentOffset, 'a chunk never goes back');
        link.socket.write(encodeDataHeader(chunk.offset, maxOffset, chunk.bytes.length));
        link.socket.write(chunk.bytes);
        link.sentOffset = chunk.offset + chunk.bytes.length;
      }
    } catch (error) {
      this.refuse(link, error);
    }
  }

  /** Tells the slave why it is dropped (a typed error), then closes its link. */
  private refuse(link: Link, error: unknown): void {
    const typed = isRocketError(error)
      ? error
      : new RocketError('PROTOCOL_ERROR', `replication link failed: ${(error as Error)?.message ?? error}`);
    if (!link.closed) {
      this.options.onEvent({ type: 'ha.slave.refused', address: link.address, error: typed });
      link.socket.end(encodeRefuse(typed.code, typed.message));
      link.socket.destroySoon();
    }
    this.drop(link, typed.message);
  }

  private drop(link: Link, reason: string): void {
    if (link.closed) return;
    link.closed = true;
    this.links.delete(link);
    link.socket.destroy();
    notify(link);
    if (link.joined) this.options.onEvent({ type: 'ha.slave.left', address: link.address, reason });
  }

  private armHousekeeping(): void {
    const interval = this.options.housekeepingIntervalMs;
    this.housekeeping = this.options.clock.setTimer(Math.min(interval, 1000), () => {
      if (this.closed) return;
      const now = this.options.clock.now();
      for (const link of [...this.links]) {
        if (now - link.lastReportMs > interval) this.drop(link, `no report for ${interval} ms`);
      }
      this.armHousekeeping();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.housekeeping?.cancel();
    this.unwatch();
    for (const link of [...this.links]) this.drop(link, 'master closing');
    for (const w of this.waiters) {
      w.timer.cancel();
      w.resolve('FLUSH_SLAVE_TIMEOUT');
    }
    this.waiters = [];
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function notify(link: Link): void {
  const wake = link.wake;
  link.wake = undefined;
  wake?.();
}
