import {
  MAX_INVISIBLE_DURATION_MS,
  MIN_RECEIVE_INVISIBLE_DURATION_MS,
  RocketError,
} from '@rocketnest/core-broker';
import type { RocketListenerMetadata, RocketListenerOptions } from './rocket-listener.decorator';

/**
 * How the declared listeners become consumers. RocketMQ keeps one subscription per (consumer
 * group, topic), and every member of a group must subscribe alike; so listeners are planned here:
 *
 * - one consumer per consumer group, with one subscription per topic;
 * - listeners of one group and topic with different tags share that subscription (`a || b`) and
 *   each message goes to the listener of its tag;
 * - anything that cannot be merged fails with `INVALID_OPTION` naming both handlers: a SQL filter
 *   next to another listener, a tag (or `*`) claimed twice, and consumer options (`messageModel`,
 *   `consumeMode`, `consumerType`, `concurrency`, `maxReconsumeTimes`, `invisibleTimeMs`) set to
 *   different values within one group.
 */

/** One declared listener and whatever the server calls for it. */
export interface PlannedListener<H> {
  metadata: RocketListenerMetadata;
  handler: H;
}

/** The consumer options that belong to a group, as the listeners of the group agreed on them. */
export type GroupConsumerSettings = Pick<
  RocketListenerOptions,
  'messageModel' | 'consumeMode' | 'consumerType' | 'concurrency' | 'maxReconsumeTimes' | 'invisibleTimeMs'
>;

const GROUP_SETTINGS: ReadonlyArray<keyof GroupConsumerSettings> = [
  'messageModel',
  'consumeMode',
  'consumerType',
  'concurrency',
  'maxReconsumeTimes',
  'invisibleTimeMs',
];

/** The subscription of a group to one topic and the listener of each tag. */
export interface TopicPlan<H> {
  topic: string;
  /** What the consumer subscribes with. */
  expression: string | { sql: string };
  /** Listener by exact tag. */
  byTag: Map<string, PlannedListener<H>>;
  /** The listener of every message (`*` or SQL), exclusive. */
  all: PlannedListener<H> | undefined;
}

export interface GroupPlan<H> {
  group: string;
  settings: GroupConsumerSettings;
  topics: Map<string, TopicPlan<H>>;
}

function conflict(message: string): RocketError {
  return new RocketError('INVALID_OPTION', `conflicting @RocketListener declarations: ${message}`);
}

const CHOICES: Partial<Record<keyof RocketListenerOptions, readonly string[]>> = {
  messageModel: ['CLUSTERING', 'BROADCASTING'],
  consumeMode: ['CONCURRENTLY', 'ORDERLY'],
  consumerType: ['push', 'simple'],
};
const RANGES: Partial<Record<keyof RocketListenerOptions, readonly [number, number]>> = {
  concurrency: [1, 10_000],
  maxReconsumeTimes: [0, 1000],
  invisibleTimeMs: [MIN_RECEIVE_INVISIBLE_DURATION_MS, MAX_INVISIBLE_DURATION_MS],
  retryDelayMs: [0, MAX_INVISIBLE_DURATION_MS],
};

/** Checks one listener's options, so a bad value fails `listen()` naming the handler instead of failing every delivery. */
function checkOptions(handlerName: string, options: RocketListenerOptions): void {
  for (const [key, choices] of Object.entries(CHOICES)) {
    const value = options[key as keyof RocketListenerOptions];
    if (value !== undefined && !choices!.includes(value as string)) {
      throw new RocketError(
        'INVALID_OPTION',
        `${handlerName}: @RocketListener option ${key} must be ${choices!.join(' or ')}; got ${String(value)}`,
      );
    }
  }
  for (const [key, [min, max]] of Object.entries(RANGES) as Array<[string, readonly [number, number]]>) {
    const value = options[key as keyof RocketListenerOptions];
    if (
      value !== undefined &&
      (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max)
    ) {
      throw new RocketError(
        'INVALID_OPTION',
        `${handlerName}: @RocketListener option ${key} must be an integer in [${min}, ${max}]; got ${String(value)}`,
      );
    }
  }
  if (options.sql !== undefined && (typeof options.sql !== 'string' || options.sql.trim() === '')) {
    throw new RocketError(
      'INVALID_OPTION',
      `${handlerName}: @RocketListener option sql must be a non-empty string`,
    );
  }
}

/** Plans consumers for `listeners`; `defaultGroup` is the group of listeners that name none. */
export function planSubscriptions<H>(
  listeners: ReadonlyArray<PlannedListener<H>>,
  defaultGroup: string,
): Map<string, GroupPlan<H>> {
  const groups = new Map<string, GroupPlan<H>>();
  /** Which listener set each group setting, to name it in a conflict. */
  const settingOwners = new Map<string, string>();
  for (const listener of listeners) {
    const { topic, tag, options, handlerName } = listener.metadata;
    checkOptions(handlerName, options);
    const group = options.group ?? defaultGroup;
    let plan = groups.get(group);
    if (!plan) {
      plan = { group, settings: {}, topics: new Map() };
      groups.set(group, plan);
    }
    for (const key of GROUP_SETTINGS) {
      const value = options[key];
      if (value === undefined) continue;
      const current = plan.settings[key];
      if (current !== undefined && current !== value) {
        throw conflict(
          `${settingOwners.get(`${group}\0${key}`)} and ${handlerName} share consumer group "${group}" but set ${key} to ${String(current)} and ${String(value)}; one group is one consumer, give one of them its own group`,
        );
      }
      (plan.settings as Record<string, unknown>)[key] = value;
      settingOwners.set(`${group}\0${key}`, handlerName);
    }
    const where = `group "${group}", topic "${topic}"`;
    let topicPlan = plan.topics.get(topic);
    if (!topicPlan) {
      topicPlan = { topic, expression: '*', byTag: new Map(), all: undefined };
      plan.topics.set(topic, topicPlan);
      if (options.sql !== undefined) {
        topicPlan.expression = { sql: options.sql };
        topicPlan.all = listener;
        continue;
      }
    } else {
      const other = topicPlan.all ?? topicPlan.byTag.values().next().value!;
      const otherName = other.metadata.handlerName;
      if (options.sql !== undefined || other.metadata.options.sql !== undefined) {
        throw conflict(
          `${otherName} and ${handlerName} both subscribe ${where} and one of them filters by SQL; RocketMQ keeps one subscription per group and topic, so a SQL listener needs a group of its own`,
        );
      }
      if (topicPlan.all || tag === '*') {
        throw conflict(
          `${otherName} and ${handlerName} both subscribe ${where} and one of them takes every tag (*); use distinct tags or distinct groups`,
        );
      }
    }
    if (tag === '*') {
      topicPlan.all = listener;
      topicPlan.expression = '*';
      continue;
    }
    for (const single of tag.split('||').map((t) => t.trim())) {
      if (single === '' || single === '*') {
        throw new RocketError(
          'INVALID_FILTER',
          `${handlerName}: tag expression "${tag}" is not a list of tags`,
        );
      }
      const owner = topicPlan.byTag.get(single);
      if (owner) {
        throw conflict(
          `${owner.metadata.handlerName} and ${handlerName} both listen to tag "${single}" in ${where}; each message is consumed once per group, so only one of them would see it`,
        );
      }
      topicPlan.byTag.set(single, listener);
    }
    topicPlan.expression = [...topicPlan.byTag.keys()].join(' || ');
  }
  for (const plan of groups.values()) checkPop(plan, settingOwners);
  return groups;
}

/** Pop consumption has no broadcasting, no client-side order and no per-consumer retry limit. */
function checkPop<H>(plan: GroupPlan<H>, owners: Map<string, string>): void {
  if (plan.settings.consumerType !== 'simple') return;
  const unsupported: Array<[keyof GroupConsumerSettings, string]> = [
    ['messageModel', 'pop consumption shares messages within the group; broadcasting needs push'],
    [
      'consumeMode',
      "pop keeps a message group's order on FIFO topics at the broker; consumeMode is for push",
    ],
    ['maxReconsumeTimes', "pop dead-letters after the broker's maxReconsumeTimes"],
  ];
  for (const [key, why] of unsupported) {
    const value = plan.settings[key];
    if (value === undefined || (key === 'messageModel' && value === 'CLUSTERING')) continue;
    if (key === 'consumeMode' && value === 'CONCURRENTLY') continue;
    throw new RocketError(
      'INVALID_OPTION',
      `${owners.get(`${plan.group}\0${key}`)}: consumer group "${plan.group}" is consumerType 'simple' and cannot set ${key} ${String(value)}: ${why}`,
    );
  }
}

/** The listener of a message with `tag` in `plan`, if any. */
export function listenerFor<H>(plan: TopicPlan<H>, tag: string | undefined): PlannedListener<H> | undefined {
  if (plan.all) return plan.all;
  return tag === undefined ? undefined : plan.byTag.get(tag);
}
