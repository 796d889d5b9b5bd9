import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Broker } from '../broker/broker';
import type { BrokerObserver, FlowControlReason } from '../broker/broker-observer';

/**
 * Distinct topics (and groups) a broker's per-topic counters keep a series for; past it, further
 * ones are counted under the label `_other`, so a client inventing topic names cannot grow the
 * registry without bound.
 */
export const MAX_METRIC_SERIES_PER_LABEL = 4096;
/** The label value counts fall under past {@link MAX_METRIC_SERIES_PER_LABEL}. */
export const OTHER_LABEL = '_other';

/** Send latency buckets, seconds: from a page-cache append to a slow fdatasync. */
const SEND_SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Flush (fdatasync) latency buckets, seconds. */
const FLUSH_SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** What the collect-on-scrape gauges read besides the broker: the TCP front end, the name servers. */
export interface BrokerMetricsSource {
  broker: Broker;
  /** Open client connections of the front ends. */
  connections(): number;
  /** Name servers the broker is registered with, of how many; undefined when it has none. */
  registeredWith(): { registered: number; of: number } | undefined;
}

interface TopicCounters {
  messagesIn: Counter.Internal;
  bytesIn: Counter.Internal;
  messagesOut: Counter.Internal;
  bytesOut: Counter.Internal;
}

/**
 * A broker's Prometheus metrics (`rocketnest_…`, base units, `_total` counters), in a registry of
 * its own. Counters of the hot path are bumped through the {@link BrokerObserver} calls, on child
 * series cached per topic (no label object per message); everything else is a gauge read from the
 * broker when scraped. Created before the store opens (it also takes the store's flush timings),
 * then {@link attach}ed to what it reads.
 */
export class BrokerMetrics implements BrokerObserver {
  readonly registry = new Registry();
  private source: BrokerMetricsSource | undefined;
  private readonly topics = new Map<string, TopicCounters>();
  private readonly deadLetterSeries = new Map<string, Counter.Internal>();
  private readonly rejectionSeries = new Map<FlowControlReason, Counter.Internal>();
  private readonly messagesIn: Counter;
  private readonly bytesIn: Counter;
  private readonly messagesOut: Counter;
  private readonly bytesOut: Counter;
  private readonly deadLetters: Counter;
  private readonly rejections: Counter;
  private readonly sendSeconds: Histogram;
  private readonly flushSeconds: Histogram;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'rocketnest_' });
    this.messagesIn = new Counter({
      name: 'rocketnest_messages_in_total',
      help: 'Messages producers stored, by topic',
      labelNames: ['topic'],
      registers,
    });
    this.bytesIn = new Counter({
      name: 'rocketnest_bytes_in_total',
      help: 'Body bytes of the messages producers stored, by topic',
      labelNames: ['topic'],
      registers,
    });
    this.messagesOut = new Counter({
      name: 'rocketnest_messages_out_total',
      help: 'Messages handed to consumers by pulls and pops, by topic (a redelivery counts again)',
      labelNames: ['topic'],
      registers,
    });
    this.bytesOut = new Counter({
      name: 'rocketnest_bytes_out_total',
      help: 'Body bytes of the messages handed to consumers, by topic',
      labelNames: ['topic'],
      registers,
    });
    this.deadLetters = new Counter({
      name: 'rocketnest_dead_letters_total',
      help: 'Messages written to a dead-letter topic after running out of attempts, by consumer group',
      labelNames: ['group'],
      registers,
    });
    this.rejections = new Counter({
      name: 'rocketnest_flow_control_rejections_total',
      help: 'Sends refused with BROKER_BUSY, by reason (disk-full, in-flight-sends, scheduled-messages, pending-transactions)',
      labelNames: ['reason'],
      registers,
    });
    this.sendSeconds = new Histogram({
      name: 'rocketnest_send_duration_seconds',
      help: 'Time from a send reaching the broker to its messages being stored (flush policy met)',
      buckets: SEND_SECONDS_BUCKETS,
      registers,
    });
    this.flushSeconds = new Histogram({
      name: 'rocketnest_flush_duration_seconds',
      help: 'Time of each fdatasync of the commit log',
      buckets: FLUSH_SECONDS_BUCKETS,
      registers,
    });
    this.gauges(registers);
  }

  /** Starts reading the broker's gauges from `source` (before, they are absent from a scrape). */
  attach(source: BrokerMetricsSource): void {
    this.source = source;
  }

  /** The registry in Prometheus text format. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  sent(topic: string, messages: number, bytes: number, seconds: number): void {
    const c = this.countersOf(topic);
    c.messagesIn.inc(messages);
    c.bytesIn.inc(bytes);
    this.sendSeconds.observe(seconds);
  }

  delivered(topic: string, messages: number, bytes: number): void {
    const c = this.countersOf(topic);
    c.messagesOut.inc(messages);
    c.bytesOut.inc(bytes);
  }

  deadLettered(group: string): void {
    let series = this.deadLetterSeries.get(group);
    if (!series) {
      const label = this.deadLetterSeries.size < MAX_METRIC_SERIES_PER_LABEL ? group : OTHER_LABEL;
      series = this.deadLetters.labels(label);
      if (label === group) this.deadLetterSeries.set(group, series);
    }
    series.inc();
  }

  rejected(reason: FlowControlReason): void {
    let series = this.rejectionSeries.get(reason);
    if (!series) {
      series = this.rejections.labels(reason);
      this.rejectionSeries.set(reason, series);
    }
    series.inc();
  }

  /** A commit-log fdatasync took `seconds` (the store's `onFlush`). */
  flushed(seconds: number): void {
    this.flushSeconds.observe(seconds);
  }

  private countersOf(topic: string): TopicCounters {
    const cached = this.topics.get(topic);
    if (cached) return cached;
    const label = this.topics.size < MAX_METRIC_SERIES_PER_LABEL ? topic : OTHER_LABEL;
    const counters: TopicCounters = {
      messagesIn: this.messagesIn.labels(label),
      bytesIn: this.bytesIn.labels(label),
      messagesOut: this.messagesOut.labels(label),
      bytesOut: this.bytesOut.labels(label),
    };
    if (label === topic) this.topics.set(topic, counters);
    return counters;
  }

  /** The gauges, each computed from the broker when scraped. */
  private gauges(registers: Registry[]): void {
    const read = (): BrokerMetricsSource | undefined => this.source;
    new Gauge({
      name: 'rocketnest_consumer_lag_messages',
      help: 'Messages stored and not yet consumed by a group (its committed offset), by group, topic and queue',
      labelNames: ['group', 'topic', 'queue'],
      registers,
      collect() {
        this.reset();
        const source = read();
        if (!source) return;
        for (const row of source.broker.allConsumeStats())
          this.set({ group: row.group, topic: row.topic, queue: String(row.queueId) }, row.lag);
      },
    });
    const simple = (
      name: string,
      help: string,
      value: (s: BrokerMetricsSource) => number | undefined,
    ): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const source = read();
          const v = source && value(source);
          if (v === undefined) this.reset();
          else this.set(v);
        },
      });
    };
    simple('rocketnest_commitlog_size_bytes', 'Bytes of the commit log on disk (its retained range)', (s) => {
      const range = s.broker.store.commitLogRange();
      return range.maxOffset - range.minOffset;
    });
    simple(
      'rocketnest_disk_used_ratio',
      'Used fraction (0..1) of the disk holding the store, as last sampled',
      (s) => s.broker.store.stats?.().diskUsedRatio,
    );
    simple(
      'rocketnest_key_index_heap_bytes',
      'Bytes the key index holds in the heap (resident slot tables and unflushed entries)',
      (s) => s.broker.store.stats?.().keyIndexHeapBytes,
    );
    simple('rocketnest_disk_full', '1 while the store refuses appends because its disk is full', (s) => {
      const stats = s.broker.store.stats?.();
      return stats === undefined ? undefined : stats.diskFull ? 1 : 0;
    });
    simple('rocketnest_connections', 'Open client connections', (s) => s.connections());
    simple(
      'rocketnest_pop_in_flight_messages',
      'Popped messages not yet acked (in flight or waiting for redelivery)',
      (s) => s.broker.pendingWork().unackedPops,
    );
    simple(
      'rocketnest_delayed_messages',
      'Delayed messages (retries included) waiting for their delivery time',
      (s) => s.broker.pendingWork().scheduledMessages,
    );
    simple(
      'rocketnest_transaction_half_messages',
      'Transactions prepared (half messages) and not yet committed or rolled back',
      (s) => s.broker.pendingWork().pendingTransactions,
    );
    simple(
      'rocketnest_name_servers_registered',
      'Name servers that accepted the latest registration round (0 when the broker has none)',
      (s) => s.registeredWith()?.registered ?? 0,
    );
    simple(
      'rocketnest_name_servers_configured',
      'Name servers the broker registers with (--namesrv)',
      (s) => s.registeredWith()?.of ?? 0,
    );
    simple(
      'rocketnest_replication_slaves',
      'Slaves connected to this master (0 on a slave or a broker that does not replicate)',
      (s) => {
        const slaves = s.broker.stats().replicationSlaves;
        return typeof slaves === 'number' ? slaves : undefined;
      },
    );
    new Gauge({
      name: 'rocketnest_replication_lag_bytes',
      help: 'Commit-log bytes a slave has not yet confirmed: on a master one series per slave (its address), on a slave its own lag (slave="self")',
      labelNames: ['slave'],
      registers,
      collect() {
        this.reset();
        const stats = read()?.broker.stats();
        if (!stats) return;
        if (stats.replicationSlaves === undefined) {
          if (typeof stats.replicationLagBytes === 'number')
            this.set({ slave: 'self' }, stats.replicationLagBytes);
          return;
        }
        for (const [key, value] of Object.entries(stats)) {
          if (key.startsWith(REPLICA_LAG_PREFIX) && typeof value === 'number')
            this.set({ slave: key.slice(REPLICA_LAG_PREFIX.length) }, value);
        }
      },
    });
  }
}

/** Broker stats key of one slave's lag on a master: `replicationLagBytes@<address>`. */
const REPLICA_LAG_PREFIX = 'replicationLagBytes@';
