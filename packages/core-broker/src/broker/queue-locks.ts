import { RocketError } from '../common/errors';
import type { QueueRef } from '../message/protocol';

/**
 * How long a queue lock lasts without renewal: 60 s (RocketMQ broker
 * `rebalanceLockMaxLiveTime`). Orderly consumers renew every 20 s.
 */
export const DEFAULT_QUEUE_LOCK_TTL_MS = 60_000;
/** Most queue locks one broker holds; past it expired ones are purged, then locking is refused. */
export const MAX_QUEUE_LOCKS = 100_000;

interface Lock {
  clientId: string;
  renewedAtMs: number;
}

/**
 * Which client of a consumer group owns which queue for orderly consumption (RocketMQ's
 * `RebalanceLockManager`): a queue is consumed in order only by the client holding its lock, so a
 * rebalance never lets two members work one queue at once. A lock is the holder's until it is
 * unlocked, its holder leaves, or it goes `ttlMs` without renewal.
 */
export class QueueLocks {
  /** `group\0topic\0queueId → lock`. */
  private readonly locks = new Map<string, Lock>();

  constructor(private readonly ttlMs = DEFAULT_QUEUE_LOCK_TTL_MS) {}

  /** Locks (or renews) every queue that is free, expired or already `clientId`'s; returns those it now holds. */
  lock(group: string, clientId: string, queues: readonly QueueRef[], nowMs: number): QueueRef[] {
    const held: QueueRef[] = [];
    for (const q of queues) {
      const key = lockKey(group, q);
      const current = this.locks.get(key);
      if (current && current.clientId !== clientId && nowMs - current.renewedAtMs <= this.ttlMs) continue;
      if (!current) this.makeRoom(nowMs);
      this.locks.set(key, { clientId, renewedAtMs: nowMs });
      held.push({ topic: q.topic, queueId: q.queueId });
    }
    return held;
  }

  /** Releases the queues `clientId` holds among `queues`; others' locks stay. */
  unlock(group: string, clientId: string, queues: readonly QueueRef[]): void {
    for (const q of queues) {
      const key = lockKey(group, q);
      if (this.locks.get(key)?.clientId === clientId) this.locks.delete(key);
    }
  }

  /** Releases every lock of a client that left. */
  release(clientId: string): void {
    for (const [key, lock] of this.locks) if (lock.clientId === clientId) this.locks.delete(key);
  }

  /** The holder of a queue's lock, if it is live. */
  holder(group: string, queue: QueueRef, nowMs: number): string | undefined {
    const lock = this.locks.get(lockKey(group, queue));
    return lock && nowMs - lock.renewedAtMs <= this.ttlMs ? lock.clientId : undefined;
  }

  private makeRoom(nowMs: number): void {
    if (this.locks.size < MAX_QUEUE_LOCKS) return;
    for (const [key, lock] of this.locks) if (nowMs - lock.renewedAtMs > this.ttlMs) this.locks.delete(key);
    if (this.locks.size >= MAX_QUEUE_LOCKS) {
      throw new RocketError('BROKER_BUSY', `the broker already holds ${MAX_QUEUE_LOCKS} queue locks`);
    }
  }
}

function lockKey(group: string, q: QueueRef): string {
  return `${group}\u0000${q.topic}\u0000${q.queueId}`;
}
