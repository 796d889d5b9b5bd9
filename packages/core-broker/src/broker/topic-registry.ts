import { RocketError } from '../common/errors';
import { Permission } from '../message/protocol';
import type { TopicConfig, TopicInput } from '../message/protocol';
import { validateTopic, validateUserTopic } from '../message/validation';
import type { ConfigFile } from './config-file';

/** Most queues a topic may have. */
export const MAX_QUEUES_PER_TOPIC = 1024;

export type { TopicInput } from '../message/protocol';

function checkCount(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > MAX_QUEUES_PER_TOPIC) {
    throw new RocketError(
      'INVALID_ARGUMENT',
      `${name} must be an integer in [1, ${MAX_QUEUES_PER_TOPIC}]; got ${value}`,
    );
  }
  return value;
}

/** Whether queue `queueId` of `topic` still stores messages (its consume queue is not empty). */
export type QueueHoldsMessages = (topic: string, queueId: number) => boolean;

/**
 * The topics a broker serves and their queue counts and permissions (RocketMQ's
 * `TopicConfigManager`), persisted in `topics.json`. User topics are created explicitly; system
 * topics (retry, dead-letter, schedule, half) are created by the broker as it needs them.
 *
 * Read and write queue counts are kept apart, as RocketMQ's `readQueueNums`/`writeQueueNums`:
 * producers write to queues `0..writeQueueCount-1`, consumers read `0..readQueueCount-1`. To take
 * queues out of service, shrink the write count first (new messages stop going there) and the read
 * count once they are empty. A change that would hide stored messages from consumers — a read
 * count below the write count, or below a queue that still holds messages — is refused.
 */
export class TopicRegistry {
  private readonly topics = new Map<string, TopicConfig>();
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly file: ConfigFile<TopicConfig[]>,
    private readonly defaultQueueCount: number,
    private readonly holdsMessages: QueueHoldsMessages = () => false,
  ) {
    for (const config of file.load() ?? []) this.topics.set(config.topic, config);
  }

  get(topic: string): TopicConfig | undefined {
    return this.topics.get(topic);
  }

  list(): TopicConfig[] {
    return [...this.topics.values()];
  }

  /**
   * Creates a user topic, or updates one: an update changes only the fields `input` gives and keeps
   * the others (`queueCount` sets both counts). A new topic takes `defaultQueueCount` queues (a
   * count given alone sets the other too), read-write permission and not FIFO. Refuses, with
   * `INVALID_ARGUMENT`, read counts that would hide stored messages (see the class comment).
   */
  upsert(input: TopicInput): TopicConfig {
    validateUserTopic(input.topic);
    const existing = this.topics.get(input.topic);
    if (!existing) {
      const readQueueCount =
        input.readQueueCount ?? input.queueCount ?? input.writeQueueCount ?? this.defaultQueueCount;
      const writeQueueCount =
        input.writeQueueCount ?? input.queueCount ?? input.readQueueCount ?? this.defaultQueueCount;
      return this.put({ ...input, readQueueCount, writeQueueCount });
    }
    const readQueueCount = input.readQueueCount ?? input.queueCount ?? existing.readQueueCount;
    const writeQueueCount = input.writeQueueCount ?? input.queueCount ?? existing.writeQueueCount;
    checkCount('readQueueCount', readQueueCount);
    for (let queueId = readQueueCount; queueId < existing.readQueueCount; queueId++) {
      if (this.holdsMessages(input.topic, queueId)) {
        throw new RocketError(
          'INVALID_ARGUMENT',
          `topic "${input.topic}": a read queue count of ${readQueueCount} would hide the messages stored in queue ${queueId} ` +
            `(of ${existing.readQueueCount}); shrink the write queue count first and the read queue count once those queues are empty`,
        );
      }
    }
    return this.put({
      topic: input.topic,
      readQueueCount,
      writeQueueCount,
      permission: input.permission ?? existing.permission,
      fifo: input.fifo ?? existing.fifo,
    });
  }

  /** Creates a system topic the broker needs (retry, dead-letter, timers), if absent. */
  ensureSystemTopic(
    topic: string,
    queueCount: number,
    permission: number = Permission.READ_WRITE,
  ): TopicConfig {
    validateTopic(topic);
    return (
      this.topics.get(topic) ??
      this.put({ topic, readQueueCount: queueCount, writeQueueCount: queueCount, permission })
    );
  }

  private put(input: TopicInput & { readQueueCount: number; writeQueueCount: number }): TopicConfig {
    const permission = input.permission ?? Permission.READ_WRITE;
    if (!Number.isInteger(permission) || (permission & ~Permission.READ_WRITE) !== 0) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `permission must be a combination of READ (4) and WRITE (2); got ${permission}`,
      );
    }
    const config: TopicConfig = {
      topic: input.topic,
      readQueueCount: checkCount('readQueueCount', input.readQueueCount),
      writeQueueCount: checkCount('writeQueueCount', input.writeQueueCount),
      permission,
      fifo: input.fifo ?? false,
    };
    if (config.readQueueCount < config.writeQueueCount) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `topic "${config.topic}": readQueueCount ${config.readQueueCount} is below writeQueueCount ${config.writeQueueCount}; ` +
          `messages written to queues ${config.readQueueCount}..${config.writeQueueCount - 1} could never be read`,
      );
    }
    this.topics.set(config.topic, config);
    this.persist();
    return config;
  }

  /** Removes a topic's config; its data stays until retention deletes it. Returns whether it existed. */
  delete(topic: string): boolean {
    const existed = this.topics.delete(topic);
    if (existed) this.persist();
    return existed;
  }

  /** Calls `listener` after every change (create, update, delete); returns the unsubscribe. */
  watch(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  private persist(): void {
    this.file.save(this.list());
    for (const listener of this.listeners) listener();
  }
}
