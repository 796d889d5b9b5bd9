import { RocketError } from '../common/errors';
import { compileFilter } from '../filter/message-filter';
import type { Subscription } from '../message/protocol';
import { validateSubscriptionTopic } from '../message/validation';

/** A tag expression (`*`, `a || b`), or a SQL92 condition on user properties and `TAGS`. */
export type SubscriptionExpression = string | { sql: string };

export interface ParseSubscriptionOptions {
  /** Checks the topic name. Default: a topic a consumer may subscribe to (a user topic, or a group's `%DLQ%` topic). */
  validateTopic?: (topic: string) => void;
  /** A blank tag expression means `*` (push and pull consumers) rather than an error. Default true. */
  blankTagMeansAll?: boolean;
}

/**
 * The one subscription check of every consumer (push, pull, simple): a subscription of `topic`
 * to a tag expression or `{ sql }`, compiled here so that a filter that does not parse is
 * `INVALID_FILTER` at `subscribe()` — with the line, column and expected token the parser
 * reports — and never a consumer that silently receives nothing.
 */
export function parseSubscription(
  topic: string,
  expression: SubscriptionExpression,
  options: ParseSubscriptionOptions = {},
): Subscription {
  (options.validateTopic ?? validateSubscriptionTopic)(topic);
  const blankTagMeansAll = options.blankTagMeansAll ?? true;
  const subscription: Subscription =
    typeof expression === 'string'
      ? { topic, kind: 'TAG', expression: blankTagMeansAll && expression.trim() === '' ? '*' : expression }
      : { topic, kind: 'SQL92', expression: expression?.sql };
  if (typeof subscription.expression !== 'string' || subscription.expression.trim() === '') {
    throw new RocketError('INVALID_FILTER', `subscription of "${topic}" needs a tag expression or { sql }`);
  }
  compileFilter(subscription.kind, subscription.expression);
  return subscription;
}

/** True when `subscription` needs no filtering (`*`, or none): pulls then carry no filter. */
export function matchesAll(subscription: Subscription | undefined): boolean {
  return (
    subscription === undefined || (subscription.kind === 'TAG' && subscription.expression.trim() === '*')
  );
}
