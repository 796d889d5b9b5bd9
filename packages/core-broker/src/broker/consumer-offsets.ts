import { assertSafeOffset } from '../common/assert';
import type { ConfigFile } from './config-file';

type OffsetTable = Record<string, Record<string, number>>;

const key = (group: string, topic: string): string => `${topic}@${group}`;

/**
 * Committed consumer offsets per (group, topic, queue) (RocketMQ's `ConsumerOffsetManager`): the
 * queue offset the group consumes next. Kept in memory, persisted to `consumerOffset.json`
 * periodically and on close; a crash loses at most one interval, which at-least-once absorbs.
 */
export class ConsumerOffsets {
  private readonly table = new Map<string, Map<number, number>>();
  private dirty = false;

  constructor(private readonly file: ConfigFile<OffsetTable>) {
    for (const [k, queues] of Object.entries(file.load() ?? {})) {
      this.table.set(k, new Map(Object.entries(queues).map(([q, o]) => [Number(q), o])));
    }
  }

  /** The committed offset, or `undefined` when the group never committed one for the queue. */
  get(group: string, topic: string, queueId: number): number | undefined {
    return this.table.get(key(group, topic))?.get(queueId);
  }

  commit(group: string, topic: string, queueId: number, offset: number): void {
    assertSafeOffset(offset, 'consumer offset');
    let queues = this.table.get(key(group, topic));
    if (!queues) {
      queues = new Map();
      this.table.set(key(group, topic), queues);
    }
    if (queues.get(queueId) !== offset) {
      queues.set(queueId, offset);
      this.dirty = true;
    }
  }

  /** Every (topic, queue → offset) a group has committed. */
  groupOffsets(group: string): Array<{ topic: string; queueId: number; offset: number }> {
    const out: Array<{ topic: string; queueId: number; offset: number }> = [];
    const suffix = `@${group}`;
    for (const [k, queues] of this.table) {
      if (!k.endsWith(suffix)) continue;
      const topic = k.slice(0, -suffix.length);
      for (const [queueId, offset] of queues) out.push({ topic, queueId, offset });
    }
    return out;
  }

  /** Every committed offset of every group. */
  *allOffsets(): IterableIterator<{ group: string; topic: string; queueId: number; offset: number }> {
    for (const [k, queues] of this.table) {
      // topic names cannot hold '@' (message/validation.ts), so the first one ends the topic
      const at = k.indexOf('@');
      const topic = k.slice(0, at);
      const group = k.slice(at + 1);
      for (const [queueId, offset] of queues) yield { group, topic, queueId, offset };
    }
  }

  persist(): void {
    if (!this.dirty) return;
    const out: OffsetTable = {};
    for (const [k, queues] of this.table) out[k] = Object.fromEntries(queues);
    this.file.save(out);
    this.dirty = false;
  }
}
