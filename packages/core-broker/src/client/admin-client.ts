import { RocketError, isRocketError } from '../common/errors';
import type {
  AdminMessage,
  ClusterInfo,
  ConsumeStatsRow,
  TopicConfig,
  TopicInput,
  TopicRoute,
} from '../message/protocol';
import { TcpTransport, type TcpTransportOptions } from './tcp-transport';

/** Replication columns of `cluster list`: slaves of a master, lag of a slave (or a master's largest slave lag). */
export interface ReplicationColumns {
  slaves?: number;
  lagBytes?: number;
}

/** {@link ClusterInfo} with {@link ReplicationColumns} on each broker. */
export interface ClusterReplication {
  clusters: Array<{
    clusterName: string;
    brokers: Array<ClusterInfo['clusters'][number]['brokers'][number] & ReplicationColumns>;
  }>;
}

/** What a cluster-wide operation did on one broker. */
export interface BrokerResult<T> {
  brokerName: string;
  result: T;
}

/**
 * Administers a cluster (through its name servers) or a standalone broker (by address), as
 * RocketMQ's `mqadmin` does: topics, consumer-group progress, message queries, offset resets and
 * dead-letter re-sends. Operations that concern a topic go to every broker serving it; the others
 * to every master of the cluster (or the brokers named). Any broker's failure rejects the call,
 * naming the broker.
 */
export class RocketAdmin {
  private readonly transport: TcpTransport;

  constructor(private readonly options: TcpTransportOptions) {
    this.transport = new TcpTransport(options);
  }

  clusterInfo(): Promise<ClusterInfo> {
    return this.transport.clusterInfo();
  }

  /**
   * The cluster, with each broker's replication state from its own stats: a master's slave count
   * and largest slave lag, a slave's lag behind its master (bytes of commit log). A broker that
   * does not answer has none.
   */
  async clusterReplication(): Promise<ClusterReplication> {
    const info = await this.transport.clusterInfo();
    const brokers = info.clusters.flatMap((c) => c.brokers);
    const stats = await Promise.all(
      brokers.map(async (b) => {
        // asked by address: a slave is no route target of the name servers
        const direct = new TcpTransport({
          ...this.options,
          nameServers: undefined,
          brokers: { [b.brokerName]: b.address },
        });
        try {
          return await direct.admin(b.brokerName, 'storeStats', {});
        } catch {
          return undefined;
        } finally {
          await direct.close();
        }
      }),
    );
    brokers.forEach((b, i) => {
      const s = stats[i];
      if (!s) return;
      const out = b as typeof b & ReplicationColumns;
      if (typeof s.replicationSlaves === 'number') out.slaves = s.replicationSlaves;
      if (typeof s.replicationLagBytes === 'number') out.lagBytes = s.replicationLagBytes;
    });
    return info as ClusterReplication;
  }

  /** Names of the masters (broker id 0), sorted. */
  async brokerNames(): Promise<string[]> {
    const info = await this.transport.clusterInfo();
    return info.clusters
      .flatMap((c) => c.brokers.filter((b) => b.brokerId === 0).map((b) => b.brokerName))
      .sort();
  }

  topicRoute(topic: string): Promise<TopicRoute> {
    return this.transport.topicRoute(topic);
  }

  /** Creates or updates a topic on the named brokers (default: every master). */
  async updateTopic(
    input: TopicInput,
    brokerNames?: readonly string[],
  ): Promise<BrokerResult<TopicConfig>[]> {
    const names = brokerNames ?? (await this.brokerNames());
    if (names.length === 0)
      throw new RocketError('BROKER_UNAVAILABLE', 'the cluster has no broker to create the topic on');
    return this.onEach(names, (b) => this.transport.admin(b, 'updateTopic', input));
  }

  async listTopics(): Promise<BrokerResult<TopicConfig[]>[]> {
    return this.onEach(await this.brokerNames(), (b) => this.transport.admin(b, 'listTopics', {}));
  }

  /** Each broker's store: disk usage, refusals, forced deletions, skipped damaged entries (`StoreStats`). */
  async storeStats(): Promise<BrokerResult<Record<string, number | boolean>>[]> {
    return this.onEach(await this.brokerNames(), (b) => this.transport.admin(b, 'storeStats', {}));
  }

  /** A group's progress and lag per queue on every broker (of `topic`'s route when given). */
  async consumeStats(
    group: string,
    topic?: string,
  ): Promise<Array<ConsumeStatsRow & { brokerName: string }>> {
    const names = topic === undefined ? await this.brokerNames() : await this.routeBrokers(topic);
    const request = topic === undefined ? { group } : { group, topic };
    const results = await this.onEach(names, (b) => this.transport.admin(b, 'consumeStats', request));
    return results.flatMap(({ brokerName, result }) => result.map((row) => ({ brokerName, ...row })));
  }

  /** The message with this id, from whichever broker stored it; `undefined` when none has it. */
  async viewMessage(msgId: string): Promise<AdminMessage | undefined> {
    for (const brokerName of await this.brokerNames()) {
      const found = await this.transport.admin(brokerName, 'viewMessage', { msgId });
      if (found) return found;
    }
    return undefined;
  }

  /** Messages of `topic` carrying `key`, from every broker of the topic, oldest first. */
  async queryByKey(topic: string, key: string, maxCount = 32): Promise<AdminMessage[]> {
    const results = await this.onEach(await this.routeBrokers(topic), (b) =>
      this.transport.admin(b, 'queryMessageByKey', { topic, key, maxCount }),
    );
    return results
      .flatMap((r) => r.result)
      .sort((a, b) => a.storeTimestampMs - b.storeTimestampMs)
      .slice(-maxCount);
  }

  /** Moves a group's offsets on every queue of `topic` to the first message stored at or after `timestampMs`. */
  async resetOffsetByTime(
    group: string,
    topic: string,
    timestampMs: number,
  ): Promise<Array<{ brokerName: string; queueId: number; offset: number }>> {
    const results = await this.onEach(await this.routeBrokers(topic), (b) =>
      this.transport.admin(b, 'resetOffset', { group, topic, timestampMs }),
    );
    return results.flatMap(({ brokerName, result }) => result.map((q) => ({ brokerName, ...q })));
  }

  /** Re-sends a dead-lettered message of `group` to its original topic, from the broker that holds it. */
  async resendDeadLetter(
    group: string,
    msgId: string,
  ): Promise<{ brokerName: string; msgId: string; topic: string; queueId: number }> {
    for (const brokerName of await this.brokerNames()) {
      try {
        const sent = await this.transport.admin(brokerName, 'resendDeadLetter', { group, msgId });
        return { brokerName, ...sent };
      } catch (error) {
        if (!isRocketError(error, 'MESSAGE_NOT_FOUND')) throw error;
      }
    }
    throw new RocketError(
      'MESSAGE_NOT_FOUND',
      `no broker holds message ${msgId} in the dead-letter topic of group "${group}"`,
    );
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  private async routeBrokers(topic: string): Promise<string[]> {
    return (await this.transport.topicRoute(topic)).brokers.map((b) => b.brokerName);
  }

  private async onEach<T>(
    brokerNames: readonly string[],
    run: (brokerName: string) => Promise<T>,
  ): Promise<BrokerResult<T>[]> {
    return Promise.all(
      brokerNames.map(async (brokerName) => {
        try {
          return { brokerName, result: await run(brokerName) };
        } catch (error) {
          if (!isRocketError(error)) throw error;
          throw new RocketError(error.code, `broker ${brokerName}: ${error.message}`, {
            cause: error,
            retriable: error.retriable,
          });
        }
      }),
    );
  }
}
