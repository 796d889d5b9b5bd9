import * as net from 'node:net';
import { type Clock, type Timer, systemClock } from '../common/clock';
import { ERROR_CODES, type ErrorCode, RocketError, isRocketError } from '../common/errors';
import { intOption } from '../common/options';
import { BLANK_HEADER_BYTES } from '../message/record-codec';
import type { FileStore } from './file-store';
import { HaFrameReader, HaFrameType, type HaFrame, encodeHello, encodeReport } from './ha-protocol';

/** How often a slave reports its offset when nothing arrives (RocketMQ `haSendHeartbeatInterval` = 5 s). */
export const DEFAULT_HA_REPORT_INTERVAL_MS = 5000;
/** How long a slave waits before connecting again after its link failed. */
export const DEFAULT_HA_RECONNECT_INTERVAL_MS = 1000;

export type HaSlaveEvent =
  | { type: 'ha.master.joined'; master: string; fromOffset: number; masterMaxOffset: number }
  | { type: 'ha.master.lost'; master: string; error: RocketError };

export interface HaSlaveOptions {
  store: FileStore;
  /** `host:port` of the master's HA port. (RocketMQ `haMasterAddress`) */
  masterAddress: string;
  /** Default {@link DEFAULT_HA_REPORT_INTERVAL_MS}. (RocketMQ `haSendHeartbeatInterval`) */
  reportIntervalMs?: number;
  /** Default {@link DEFAULT_HA_RECONNECT_INTERVAL_MS}. */
  reconnectIntervalMs?: number;
  clock?: Clock;
  onEvent?: (event: HaSlaveEvent) => void;
}

export type ResolvedHaSlaveOptions = Readonly<Required<Omit<HaSlaveOptions, 'onEvent'>>> & {
  onEvent: (event: HaSlaveEvent) => void;
  host: string;
  port: number;
};

export function resolveHaSlaveOptions(options: HaSlaveOptions): ResolvedHaSlaveOptions {
  const owner = 'ha slave';
  const match = /^([^\s:]{1,253}):(\d{1,5})$/.exec(options.masterAddress ?? '');
  const port = match ? Number(match[2]) : NaN;
  if (!match || port < 1 || port > 65_535) {
    throw new RocketError(
      'INVALID_OPTION',
      `ha slave option masterAddress must be the master's HA address host:port; got "${options.masterAddress}"`,
    );
  }
  return Object.freeze({
    store: options.store,
    masterAddress: options.masterAddress,
    host: match[1]!,
    port,
    reportIntervalMs: intOption(
      owner,
      'reportIntervalMs',
      options.reportIntervalMs,
      DEFAULT_HA_REPORT_INTERVAL_MS,
      10,
    ),
    reconnectIntervalMs: intOption(
      owner,
      'reconnectIntervalMs',
      options.reconnectIntervalMs,
      DEFAULT_HA_RECONNECT_INTERVAL_MS,
      10,
    ),
    clock: options.clock ?? systemClock,
    onEvent: options.onEvent ?? ((): void => undefined),
  });
}

/** What a slave knows of its master. */
export interface HaSlaveState {
  master: string;
  connected: boolean;
  /** The master's log end, as last told (0 before the first link). */
  masterMaxOffset: number;
  /** This slave's log end. */
  maxOffset: number;
  /** Bytes of the master's log this slave does not hold yet (as of the last frame). */
  lagBytes: number;
  /** The master's client address from its welcome ('' until known). */
  masterClientAddress: string;
  /** Why the last link ended, if it failed. */
  lastError: string | undefined;
}

/**
 * The slave's side of replication (RocketMQ's `HAClient`): connects to the master's HA port, says
 * where its log ends, appends what the master streams through {@link FileStore.appendReplicated}
 * (verified record by record, stored at the same offsets, dispatched by the same dispatcher) and
 * reports what it holds after each write and every `reportIntervalMs`. A failed link (refused,
 * cut, a damaged frame) is dropped whole and made again after `reconnectIntervalMs`, from the
 * slave's own log end: nothing half-received is kept.
 */
export class HaSlave {
  private socket: net.Socket | undefined;
  private connected = false;
  private closed = false;
  private retryTimer: Timer | undefined;
  private reportTimer: Timer | undefined;
  private masterMaxOffset = 0;
  private masterClientAddress = '';
  private lastError: string | undefined;
  /** Commit-log offset the next record starts at, and the bytes of it received so far. */
  private nextOffset = 0;
  private tail: Buffer = Buffer.alloc(0);
  private work: Promise<void> = Promise.resolve();

  private constructor(private readonly options: ResolvedHaSlaveOptions) {}

  static start(options: HaSlaveOptions): HaSlave {
    const slave = new HaSlave(resolveHaSlaveOptions(options));
    slave.connect();
    slave.armReport();
    return slave;
  }

  state(): HaSlaveState {
    const maxOffset = this.options.store.commitLogRange().maxOffset;
    return {
      master: this.options.masterAddress,
      connected: this.connected,
      masterMaxOffset: this.masterMaxOffset,
      maxOffset,
      lagBytes: Math.max(0, this.masterMaxOffset - maxOffset),
      masterClientAddress: this.masterClientAddress,
      lastError: this.lastError,
    };
  }

  private connect(): void {
    if (this.closed) return;
    const { host, port, store } = this.options;
    const socket = net.connect({ host, port });
    this.socket = socket;
    socket.setNoDelay(true);
    const reader = new HaFrameReader();
    let failed = false;
    const fail = (error: unknown): void => {
      if (failed) return;
      failed = true;
      const typed = isRocketError(error)
        ? error
        : new RocketError(
            'BROKER_UNAVAILABLE',
            `replication link to ${this.options.masterAddress}: ${(error as Error)?.message ?? error}`,
          );
      this.lastError = `${typed.code}: ${typed.message}`;
      if (!this.closed)
        this.options.onEvent({ type: 'ha.master.lost', master: this.options.masterAddress, error: typed });
      this.connected = false;
      socket.destroy();
      if (this.socket === socket) this.socket = undefined;
      if (!this.closed)
        this.retryTimer = this.options.clock.setTimer(this.options.reconnectIntervalMs, () => this.connect());
    };
    socket.on('connect', () => {
      const maxOffset = store.commitLogRange().maxOffset;
      const digest = store.tailDigest(maxOffset) ?? { length: 0, crc: 0 };
      this.nextOffset = maxOffset;
      this.tail = Buffer.alloc(0);
      socket.write(
        encodeHello({
          segmentSize: store.segmentSizeBytes,
          maxOffset,
          tailLength: digest.length,
          tailCrc: digest.crc,
          storeId: store.storeId,
        }),
      );
    });
    socket.on('data', (chunk: Buffer) => {
      let frames: HaFrame[];
      try {
        frames = reader.push(chunk);
      } catch (error) {
        fail(error);
        return;
      }
      if (frames.length === 0) return;
      // one batch at a time: reading stops until its records are stored (bounded memory)
      socket.pause();
      this.work = this.work
        .then(() => (failed ? undefined : this.handle(socket, frames)))
        .then(
          () => {
            if (!failed) socket.resume();
          },
          (error: unknown) => fail(error),
        );
    });
    socket.on('error', (error) => fail(error));
    socket.on('close', () =>
      fail(new RocketError('BROKER_UNAVAILABLE', `replication link to ${this.options.masterAddress} closed`)),
    );
  }

  /** Applies a batch of frames: contiguous DATA is stored with one append (one flush). */
  private async handle(socket: net.Socket, frames: HaFrame[]): Promise<void> {
    const store = this.options.store;
    let parts: Buffer[] = [];
    let expected = this.nextOffset + this.tail.length;
    const apply = async (): Promise<void> => {
      if (parts.length === 0) return;
      const buf = this.tail.length > 0 ? Buffer.concat([this.tail, ...parts]) : Buffer.concat(parts);
      parts = [];
      const applied = store.appendReplicated(this.nextOffset, buf);
      // keep only the partial record, copied so the batch's buffer is not held
      this.tail = Buffer.from(buf.subarray(applied.consumed));
      this.nextOffset = applied.nextOffset;
      await applied.written;
      if (!socket.destroyed) socket.write(encodeReport(store.commitLogRange().maxOffset));
    };
    for (const frame of frames) {
      switch (frame.type) {
        case HaFrameType.WELCOME:
          if (frame.segmentSize !== store.segmentSizeBytes)
            throw new RocketError(
              'REPLICA_DIVERGED',
              `the master's segment size ${frame.segmentSize} is not this slave's ${store.segmentSizeBytes}; use the same --segment-size`,
            );
          if (store.commitLogRange().maxOffset === 0) store.adoptStoreId(frame.storeId);
          this.masterMaxOffset = frame.maxOffset;
          this.masterClientAddress = frame.clientAddress;
          this.connected = true;
          this.lastError = undefined;
          this.options.onEvent({
            type: 'ha.master.joined',
            master: this.options.masterAddress,
            fromOffset: this.nextOffset,
            masterMaxOffset: frame.maxOffset,
          });
          break;
        case HaFrameType.REFUSE: {
          const code: ErrorCode = frame.code in ERROR_CODES ? (frame.code as ErrorCode) : 'REPLICA_DIVERGED';
          throw new RocketError(code, `the master refused this slave: ${frame.message}`);
        }
        case HaFrameType.DATA: {
          if (!this.connected) throw new RocketError('PROTOCOL_ERROR', 'replication data before the welcome');
          if (frame.offset !== expected) {
            // what came before is stored first: after padding, the store says where the next record starts
            await apply();
            expected = this.nextOffset + this.tail.length;
            // the one gap the log has: a segment's last bytes, too few for padding, are never written
            const size = store.segmentSizeBytes;
            const segmentEnd = expected - (expected % size) + size;
            const gap =
              this.tail.length === 0 &&
              frame.offset === segmentEnd &&
              segmentEnd - expected < BLANK_HEADER_BYTES;
            if (frame.offset !== expected && !gap) {
              throw new RocketError(
                'PROTOCOL_ERROR',
                `replication data at offset ${frame.offset}, expected ${expected}: the link is dropped and made again`,
              );
            }
            if (gap) this.nextOffset = expected = frame.offset;
          }
          parts.push(frame.bytes);
          expected += frame.bytes.length;
          this.masterMaxOffset = Math.max(this.masterMaxOffset, frame.masterMaxOffset);
          break;
        }
        default:
          throw new RocketError(
            'PROTOCOL_ERROR',
            `replication frame type ${frame.type} unexpected on a slave`,
          );
      }
    }
    await apply();
  }

  private armReport(): void {
    this.reportTimer = this.options.clock.setTimer(this.options.reportIntervalMs, () => {
      if (this.closed) return;
      if (this.connected && this.socket && !this.socket.destroyed)
        this.socket.write(encodeReport(this.options.store.commitLogRange().maxOffset));
      this.armReport();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.retryTimer?.cancel();
    this.reportTimer?.cancel();
    this.socket?.destroy();
    await this.work.catch(() => undefined);
  }
}
