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

/**
 * The topics a broker serves and their queue counts and permissions (RocketMQ's
 * `TopicConfigManager`), persisted in `topics.json`. User topics are created explicitly; system
 * topics (retry, dead-letter, schedule, half) are created by the broker as it needs them.
 */
export class TopicRegistry {
  private readonly topics = new Map<string, TopicConfig>();
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly file: ConfigFile<TopicConfig[]>,
    private readonly defaultQueueCount: number,
  ) {
    for (const config of file.load() ?? []) this.topics.set(config.topic, config);
  }

  get(topic: string): TopicConfig | undefined {
    return this.topics.get(topic);
  }

  list(): TopicConfig[] {
    return [...this.topics.values()];
  }

  /** Creates or updates a user topic. Shrinking queue counts hides, never deletes, queues' data. */
  upsert(input: TopicInput): TopicConfig {
    validateUserTopic(input.topic);
    return this.put(input);
  }

  /** Creates a system topic the broker needs (retry, dead-letter, timers), if absent. */
  ensureSystemTopic(
    topic: string,
    queueCount: number,
    permission: number = Permission.READ_WRITE,
  ): TopicConfig {
    validateTopic(topic);
    return this.topics.get(topic) ?? this.put({ topic, queueCount, permission });
  }

  private put(input: TopicInput): TopicConfig {
    const base = input.queueCount ?? this.defaultQueueCount;
    const permission = input.permission ?? Permission.READ_WRITE;
    if (!Number.isInteger(permission) || (permission & ~Permission.READ_WRITE) !== 0) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `permission must be a combination of READ (4) and WRITE (2); got ${permission}`,
      );
    }
    const config: TopicConfig = {
      topic: input.topic,
      readQueueCount: checkCount('readQueueCount', input.readQueueCount ?? base),
      writeQueueCount: checkCount('writeQueueCount', input.writeQueueCount ?? base),
      permission,
      fifo: input.fifo ?? false,
    };
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
