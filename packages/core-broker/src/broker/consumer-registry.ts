import type { ConsumerHeartbeat, HeartbeatRequest, Subscription } from '../message/protocol';

interface Member {
  lastHeartbeatMs: number;
  consumer: ConsumerHeartbeat;
}

export interface MembershipChange {
  group: string;
  consumerIds: string[];
}

/**
 * Who is in which consumer and producer group, from client heartbeats (RocketMQ's
 * `ConsumerManager` / `ProducerManager`). A client silent for `expiryMs` leaves its groups. A
 * change of a consumer group's members is reported so the broker can tell the remaining members to
 * rebalance at once rather than at their next periodic rebalance.
 */
export class ConsumerRegistry {
  private readonly groups = new Map<string, Map<string, Member>>();
  private readonly producers = new Map<string, Map<string, number>>();

  constructor(private readonly expiryMs: number) {}

  /** Records a heartbeat; returns the consumer groups whose member list changed. */
  heartbeat(request: HeartbeatRequest, nowMs: number): string[] {
    const changed: string[] = [];
    for (const consumer of request.consumers) {
      let members = this.groups.get(consumer.group);
      if (!members) {
        members = new Map();
        this.groups.set(consumer.group, members);
      }
      if (!members.has(request.clientId)) changed.push(consumer.group);
      members.set(request.clientId, { lastHeartbeatMs: nowMs, consumer });
    }
    for (const group of request.producerGroups) {
      let clients = this.producers.get(group);
      if (!clients) {
        clients = new Map();
        this.producers.set(group, clients);
      }
      clients.set(request.clientId, nowMs);
    }
    return changed;
  }

  /** Removes a client from every group (it shut down); returns the consumer groups it left. */
  unregister(clientId: string): string[] {
    const changed: string[] = [];
    for (const [group, members] of this.groups) {
      if (members.delete(clientId)) changed.push(group);
      if (members.size === 0) this.groups.delete(group);
    }
    for (const [group, clients] of this.producers) {
      clients.delete(clientId);
      if (clients.size === 0) this.producers.delete(group);
    }
    return changed;
  }

  /** Drops clients silent for longer than the expiry; returns the consumer groups that changed. */
  expire(nowMs: number): string[] {
    const changed = new Set<string>();
    for (const [group, members] of this.groups) {
      for (const [clientId, member] of members) {
        if (nowMs - member.lastHeartbeatMs > this.expiryMs) {
          members.delete(clientId);
          changed.add(group);
        }
      }
      if (members.size === 0) this.groups.delete(group);
    }
    for (const [group, clients] of this.producers) {
      for (const [clientId, last] of clients) if (nowMs - last > this.expiryMs) clients.delete(clientId);
      if (clients.size === 0) this.producers.delete(group);
    }
    return [...changed];
  }

  /** Members of a consumer group, sorted (every member rebalances over the same list). */
  consumerIds(group: string): string[] {
    return [...(this.groups.get(group)?.keys() ?? [])].sort();
  }

  /** Clients that heartbeat as producers of `group`, most recently seen first. */
  producerIds(group: string): string[] {
    return [...(this.producers.get(group) ?? new Map<string, number>()).entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([clientId]) => clientId);
  }

  /** The subscription a group's members declared for `topic` (the most recent heartbeat's). */
  subscription(group: string, topic: string): Subscription | undefined {
    let latest: Member | undefined;
    for (const member of this.groups.get(group)?.values() ?? []) {
      if (member.consumer.subscriptions.some((s) => s.topic === topic)) {
        if (!latest || member.lastHeartbeatMs > latest.lastHeartbeatMs) latest = member;
      }
    }
    return latest?.consumer.subscriptions.find((s) => s.topic === topic);
  }

  groupNames(): string[] {
    return [...this.groups.keys()];
  }
}
