import type { Producer } from '@rocketnest/core-broker';
import type { Counter, Histogram, Registry } from 'prom-client';

/** Handler duration buckets, seconds. */
const HANDLER_SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Send latency buckets, seconds. */
const SEND_SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Failed messages whose tag is remembered until the broker says whether they were dead-lettered. */
const REMEMBERED_FAILURES = 4096;

export interface RocketMetricsOptions {
  /** The registry the metrics are registered in (the app's `/metrics`). Default: prom-client's global one. */
  registry?: Registry;
}

/** What one handler run turned into, as the server tells the metrics. */
export type RocketHandlerOutcome = 'ack' | 'retry' | 'dead-letter';

/**
 * Client-side Prometheus metrics of an app using RocketNest, opt-in: pass one to `RocketModule`
 * (`metrics`: the template's and client's sends) and to `RocketServer` (`metrics`: the handlers).
 * Needs `prom-client` (an optional peer dependency), loaded only when this is constructed.
 *
 * - `rocketnest_client_send_duration_seconds{topic}` and `rocketnest_client_send_failures_total{topic}`
 * - `rocketnest_client_handler_duration_seconds{topic,tag,group}`
 * - `rocketnest_client_handler_failures_total{topic,tag,group}` (the handler threw)
 * - `rocketnest_client_retries_total{topic,tag,group}` (the message goes back for another attempt)
 * - `rocketnest_client_dead_letters_total{topic,tag,group}` (the broker moved it to `%DLQ%<group>`)
 */
export class RocketMetrics {
  private readonly sendSeconds: Histogram<'topic'>;
  private readonly sendFailures: Counter<'topic'>;
  private readonly handlerSeconds: Histogram<'topic' | 'tag' | 'group'>;
  private readonly handlerFailures: Counter<'topic' | 'tag' | 'group'>;
  private readonly retries: Counter<'topic' | 'tag' | 'group'>;
  private readonly deadLetters: Counter<'topic' | 'tag' | 'group'>;
  /** msgId → tag of messages whose handler failed, until dead-lettered or forgotten (bounded). */
  private readonly failedTags = new Map<string, string>();

  constructor(options: RocketMetricsOptions = {}) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional peer, loaded on use
    const prom = require('prom-client') as typeof import('prom-client');
    const registers = [options.registry ?? prom.register];
    this.sendSeconds = new prom.Histogram({
      name: 'rocketnest_client_send_duration_seconds',
      help: 'Time of a send from the first attempt to the broker storing it (retries included), by topic',
      labelNames: ['topic'],
      buckets: SEND_SECONDS_BUCKETS,
      registers,
    });
    this.sendFailures = new prom.Counter({
      name: 'rocketnest_client_send_failures_total',
      help: 'Sends that failed for good (after their retries), by topic',
      labelNames: ['topic'],
      registers,
    });
    const labelNames = ['topic', 'tag', 'group'] as const;
    this.handlerSeconds = new prom.Histogram({
      name: 'rocketnest_client_handler_duration_seconds',
      help: 'Time a message handler ran, by topic, tag and consumer group',
      labelNames,
      buckets: HANDLER_SECONDS_BUCKETS,
      registers,
    });
    this.handlerFailures = new prom.Counter({
      name: 'rocketnest_client_handler_failures_total',
      help: 'Handler runs that did not consume the message (threw, or nacked), by topic, tag and group',
      labelNames,
      registers,
    });
    this.retries = new prom.Counter({
      name: 'rocketnest_client_retries_total',
      help: 'Messages handed back for another attempt, by topic, tag and group',
      labelNames,
      registers,
    });
    this.deadLetters = new prom.Counter({
      name: 'rocketnest_client_dead_letters_total',
      help: 'Messages moved to the dead-letter queue of their group, by topic, tag and group',
      labelNames,
      registers,
    });
  }

  /** Counts `producer`'s sends (its `producer.send` and `producer.send.failed` events). */
  observeProducer(producer: Pick<Producer, 'on'>): void {
    producer.on('producer.send', (e) => this.sendSeconds.observe({ topic: e.topic }, e.elapsedMs / 1000));
    producer.on('producer.send.failed', (e) => {
      this.sendFailures.inc({ topic: e.topic });
      this.sendSeconds.observe({ topic: e.topic }, e.elapsedMs / 1000);
    });
  }

  /** A handler ran for `seconds` on message `msgId` and its outcome was `outcome`. Internal: `RocketServer` calls it. */
  handled(
    labels: { topic: string; tag: string; group: string },
    msgId: string,
    seconds: number,
    outcome: RocketHandlerOutcome,
  ): void {
    this.handlerSeconds.observe(labels, seconds);
    if (outcome === 'ack') return;
    this.handlerFailures.inc(labels);
    if (outcome === 'retry') this.retries.inc(labels);
    if (this.failedTags.size >= REMEMBERED_FAILURES) {
      this.failedTags.delete(this.failedTags.keys().next().value!);
    }
    this.failedTags.set(msgId, labels.tag);
  }

  /** The broker moved `msgId` of `topic` to `group`'s dead-letter queue. Internal: `RocketServer` calls it. */
  deadLettered(topic: string, group: string, msgId: string): void {
    const tag = this.failedTags.get(msgId) ?? '';
    this.failedTags.delete(msgId);
    this.deadLetters.inc({ topic, tag, group });
  }
}
