import type * as grpc from '@grpc/grpc-js';
import { RocketError } from '../../common/errors';
import {
  AddressScheme,
  type MessageV2,
  type Settings,
  type TelemetryCommand,
  msDuration,
} from '../../rocketmq5/codec';
import { Code } from '../../rocketmq5/status';
import {
  DEFAULT_APACHE_RECONNECT_BACKOFF_MS,
  DEFAULT_APACHE_SETTINGS_SYNC_INTERVAL_MS,
  MAX_APACHE_RECONNECT_BACKOFF_MS,
} from './apache-options';
import { type ApacheRpc, grpcError } from './apache-rpc';

/** What one RocketMQ 5 client (a producer or a consumer) declares to the proxy. */
export interface SessionSpec {
  clientId: string;
  clientType: number;
  /** Consumers: their group, sent with heartbeats and termination. */
  group?: string;
  /** The Settings this client sends (publishing or subscription part). */
  settings: Pick<Settings, 'publishing' | 'subscription' | 'backoffPolicy'>;
  /** A transaction check pushed by the proxy (`recover_orphaned_transaction_command`). */
  onTransactionCheck?: (message: MessageV2, transactionId: string) => void;
  /** A failure the session survives (heartbeat, broken stream). */
  onError?: (error: unknown) => void;
}

/**
 * One client's session with the proxy, as the official 5.x clients keep it: a Telemetry stream
 * that carries the client's Settings (answered with the server's merged Settings: backoff, FIFO
 * flag, batch size) and the proxy's commands (transaction checks), a heartbeat every
 * `heartbeatIntervalMs`, the Settings re-sent every 5 minutes, and NotifyClientTermination on
 * close. A stream that breaks while running is reopened with a backoff (1 s doubling to 10 s)
 * and the Settings resent, so a restarted proxy learns the client again.
 */
export class ApacheSession {
  /** The Settings the proxy last sent back. */
  serverSettings: Settings | undefined;
  private stream: grpc.ClientDuplexStream<TelemetryCommand, TelemetryCommand> | undefined;
  private running = false;
  private backoffMs = DEFAULT_APACHE_RECONNECT_BACKOFF_MS;
  private readonly timers = new Set<NodeJS.Timeout>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private settingsWaiters: Array<(settings: Settings) => void> = [];

  constructor(
    private readonly rpc: ApacheRpc,
    private readonly spec: SessionSpec,
  ) {}

  get clientId(): string {
    return this.spec.clientId;
  }

  /** Opens Telemetry and waits for the proxy's Settings; rejects (and closes) when none come in time. */
  async start(): Promise<void> {
    this.running = true;
    const first = this.nextSettings();
    const failed = new Promise<never>((_, reject) => this.open(reject));
    try {
      await Promise.race([first, failed, this.timeout(this.rpc.options.settingsTimeoutMs)]);
    } catch (error) {
      await this.close(false);
      throw error;
    }
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.rpc.options.heartbeatIntervalMs);
    this.syncTimer = setInterval(() => this.sendSettings(), DEFAULT_APACHE_SETTINGS_SYNC_INTERVAL_MS);
    await this.heartbeat();
  }

  /** Changes what this client declares (a producer's new topic) and tells the proxy at once. */
  updateSettings(settings: SessionSpec['settings']): void {
    this.spec.settings = settings;
    this.sendSettings();
  }

  /** Resolves with the next Settings the proxy sends. */
  nextSettings(): Promise<Settings> {
    return new Promise((resolve) => this.settingsWaiters.push(resolve));
  }

  /** Ends the session: NotifyClientTermination (when `notify`), then the stream. Idempotent. */
  async close(notify = true): Promise<void> {
    const wasRunning = this.running;
    this.running = false;
    clearInterval(this.heartbeatTimer);
    clearInterval(this.syncTimer);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    if (notify && wasRunning) {
      await this.rpc.unary('NotifyClientTermination', this.clientId, this.groupPart()).catch(() => undefined);
    }
    const stream = this.stream;
    this.stream = undefined;
    if (stream) {
      await new Promise<void>((resolve) => {
        const done = setTimeout(() => {
          stream.cancel();
          resolve();
        }, 1000);
        stream.once('close', () => {
          clearTimeout(done);
          resolve();
        });
        stream.once('error', () => undefined);
        stream.end();
      });
    }
  }

  private groupPart(): { group?: { resourceNamespace?: string; name: string } } {
    return this.spec.group === undefined ? {} : { group: this.rpc.resource(this.spec.group) };
  }

  private settings(): Settings {
    const { endpoints, requestTimeoutMs } = this.rpc.options;
    const ipv4 = endpoints.every((e) => /^\d+\.\d+\.\d+\.\d+$/.test(e.host));
    return {
      clientType: this.spec.clientType,
      accessPoint: {
        scheme: ipv4 ? AddressScheme.IPv4 : AddressScheme.DOMAIN_NAME,
        addresses: endpoints.map((e) => ({ host: e.host, port: e.port })),
      },
      requestTimeout: msDuration(requestTimeoutMs),
      userAgent: { language: 8 /* NODE_JS */, version: '1.0.0', platform: process.platform, hostname: '' },
      ...this.spec.settings,
    };
  }

  private open(failStart?: (error: unknown) => void): void {
    if (!this.running) return;
    const stream = this.rpc.telemetry(this.clientId);
    this.stream = stream;
    let ended = false;
    const broken = (error: unknown): void => {
      if (ended) return;
      ended = true;
      if (this.stream !== stream || !this.running) return;
      if (failStart && this.serverSettings === undefined) {
        failStart(error);
        return;
      }
      this.spec.onError?.(error);
      this.reopenLater();
    };
    stream.on('data', (command: TelemetryCommand) => this.onCommand(command));
    stream.on('error', (error) => broken(grpcError('Telemetry', error as grpc.ServiceError)));
    stream.on('end', () =>
      broken(new RocketError('BROKER_UNAVAILABLE', 'the proxy closed the Telemetry stream')),
    );
    stream.write({ settings: this.settings() });
  }

  private reopenLater(): void {
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_APACHE_RECONNECT_BACKOFF_MS);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.open();
    }, delay);
    this.timers.add(timer);
  }

  private sendSettings(): void {
    if (this.running && this.stream) this.stream.write({ settings: this.settings() });
  }

  private onCommand(command: TelemetryCommand): void {
    if (command.settings) {
      this.serverSettings = command.settings;
      this.backoffMs = DEFAULT_APACHE_RECONNECT_BACKOFF_MS;
      const waiters = this.settingsWaiters;
      this.settingsWaiters = [];
      for (const resolve of waiters) resolve(command.settings);
    } else if (command.recoverOrphanedTransactionCommand) {
      const { message, transactionId } = command.recoverOrphanedTransactionCommand;
      this.spec.onTransactionCheck?.(message, transactionId);
    } else if (command.verifyMessageCommand) {
      this.stream?.write({
        status: {
          code: Code.NOT_IMPLEMENTED,
          message: 'message verification is not implemented by the RocketNest driver',
        },
        verifyMessageResult: { nonce: command.verifyMessageCommand.nonce },
      });
    } else if (command.printThreadStackTraceCommand) {
      this.stream?.write({
        status: { code: Code.OK, message: 'OK' },
        threadStackTrace: {
          nonce: command.printThreadStackTraceCommand.nonce,
          threadStackTrace: 'Node.js: no thread stacks',
        },
      });
    }
  }

  private async heartbeat(): Promise<void> {
    if (!this.running) return;
    try {
      await this.rpc.unary('Heartbeat', this.clientId, {
        ...this.groupPart(),
        clientType: this.spec.clientType,
      });
    } catch (error) {
      // The proxy lost this client's Settings (restart, expiry): resend them on a fresh stream.
      if (this.running && /UNRECOGNIZED_CLIENT_TYPE/.test((error as Error).message)) {
        this.stream?.cancel();
      }
      this.spec.onError?.(error);
    }
  }

  private timeout(ms: number): Promise<never> {
    return new Promise((_, reject) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        reject(
          new RocketError(
            'TIMEOUT',
            `the proxy at ${this.rpc.options.endpoints.map((e) => `${e.host}:${e.port}`).join(';')} sent no Settings on Telemetry within ${ms} ms: is it a RocketMQ 5 gRPC endpoint (proxy gRPC port, 8081 by default)?`,
          ),
        );
      }, ms);
      this.timers.add(timer);
    });
  }
}
