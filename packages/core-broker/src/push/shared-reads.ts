import type { Clock } from '../common/clock';
import { assert } from '../common/assert';
import { readQueue, type QueueRead, type QueueReadRequest } from '../client/queue-reader';
import type { Transport } from '../client/transport';

/**
 * Most distinct reads in flight at once. Each subscription has at most one read per queue in
 * flight, so the connection and subscription limits bound this already; the assertion catches a
 * leak, it is not flow control.
 */
export const MAX_SHARED_READS = 1_000_000;

/**
 * One broker read for every subscription that asks for the same thing at the same time: the same
 * queue, offset, batch size, filter and long-poll wait. Subscriptions caught up with a topic all
 * wait at its tail with identical reads, so a topic fanned out to N connections costs one long
 * poll and one decode per queue instead of N, and each answer's messages are the same objects for
 * every subscription (so the frame cache encodes each once).
 *
 * Each subscription keeps its own cursor and position: a read only deduplicates the request, it
 * never moves anyone's offset, so resuming stays exact and independent per connection. A
 * subscription behind the others reads at its own offset and joins the shared reads once it
 * catches up. A failed read fails every subscription that shared it; each retries on its own.
 */
export class SharedReads {
  private readonly inFlight = new Map<string, Promise<QueueRead>>();
  /** Reads issued to the broker, and reads answered from one already in flight (for tests and stats). */
  readonly counters = { issued: 0, joined: 0 };

  constructor(
    private readonly transport: Transport,
    private readonly clock: Clock,
  ) {}

  read(request: QueueReadRequest): Promise<QueueRead> {
    const { queue, subscription } = request;
    const filter = subscription === undefined ? '' : `${subscription.kind}\u0000${subscription.expression}`;
    const key = [
      queue.brokerName,
      queue.topic,
      queue.queueId,
      request.offset,
      request.maxCount,
      request.suspendTimeoutMs,
      request.consumerGroup,
      filter,
    ].join('\u0001');
    const current = this.inFlight.get(key);
    if (current !== undefined) {
      this.counters.joined++;
      return current;
    }
    assert(
      this.inFlight.size < MAX_SHARED_READS,
      'shared push reads leak: more in flight than any limit allows',
    );
    this.counters.issued++;
    // the entry goes before any reader sees the answer, so the next read of each is a new one
    const read = readQueue(this.transport, this.clock, request).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, read);
    return read;
  }

  /** Reads in flight now. */
  get size(): number {
    return this.inFlight.size;
  }
}
