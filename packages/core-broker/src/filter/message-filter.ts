import { RocketError } from '../common/errors';
import { compileSqlCondition, type SqlProperties } from './sql-evaluator';
import { parseSqlExpression } from './sql-parser';
import { compileTagExpression, SUBSCRIBE_ALL_EXPRESSION } from './tag-expression';

/**
 * The filter layer's entry point: a consumer's subscription expression compiled once into a
 * {@link MessageFilter} the store and broker apply to every candidate message.
 */

/** RocketMQ's `ExpressionType`: `TAG` (the default) or `SQL92` (property filter). */
export type FilterType = 'TAG' | 'SQL92';

/** The filter types, for validating input from the wire or configuration. */
export const FILTER_TYPES: readonly FilterType[] = Object.freeze(['TAG', 'SQL92'] as const);

/**
 * A compiled subscription filter. Both checks are pure and cheap; build the filter once per
 * subscription with {@link compileFilter} and call them per message.
 */
export interface MessageFilter {
  readonly type: FilterType;
  /** The expression as the consumer sent it. */
  readonly expression: string;
  /**
   * Cheap pre-check on the tag hash a consume-queue entry carries (`tagHash()`; `NO_TAG_HASH` for an
   * untagged message); `true` when the entry may match and the message must be read and passed to
   * {@link matches}. RocketMQ's `ExpressionMessageFilter.isMatchedByConsumeQueue` does the same.
   * SQL92 filters always return `true`: properties are not in the consume queue.
   */
  matchesTagHash(tagHash: number): boolean;
  /**
   * Exact check on the message itself: its tag (`undefined` or `''` when untagged) and its user
   * properties. A tag filter compares the tag exactly (hash collisions are resolved here); a SQL92
   * filter is delivered only when the expression is TRUE (not FALSE, not NULL).
   */
  matches(tag: string | undefined, properties: SqlProperties): boolean;
}

/**
 * Compiles a subscription expression. Throws `INVALID_FILTER` (the message names the line and
 * column) for an expression that does not parse or breaks a limit (`MAX_FILTER_EXPRESSION_CHARS`,
 * `MAX_SQL_NESTING_DEPTH`), and `INVALID_ARGUMENT` for an unknown type or a non-string expression.
 * Unlike RocketMQ there is no broker switch (`enablePropertyFilter`) here; the broker decides
 * whether to accept SQL92 subscriptions before calling this.
 */
export function compileFilter(type: FilterType, expression: string): MessageFilter {
  if (typeof expression !== 'string') {
    throw new RocketError(
      'INVALID_ARGUMENT',
      `A filter expression must be a string, got ${typeof expression}`,
    );
  }
  if (type === 'TAG') return tagFilter(expression);
  if (type === 'SQL92') return sqlFilter(expression);
  throw new RocketError(
    'INVALID_ARGUMENT',
    `Unknown filter type ${JSON.stringify(type)}; expected one of ${FILTER_TYPES.join(', ')}`,
  );
}

/** The filter that accepts every message: tag expression `*`. */
export const MATCH_ALL: MessageFilter = Object.freeze({
  type: 'TAG',
  expression: SUBSCRIBE_ALL_EXPRESSION,
  matchesTagHash: () => true,
  matches: () => true,
});

function tagFilter(expression: string): MessageFilter {
  const compiled = compileTagExpression(expression);
  if (compiled.matchAll) return Object.freeze({ ...MATCH_ALL, expression });
  const { tags, tagHashes } = compiled;
  return Object.freeze({
    type: 'TAG',
    expression,
    matchesTagHash: (tagHash: number) => tagHashes.has(tagHash),
    matches: (tag: string | undefined) => tag !== undefined && tags.has(tag),
  });
}

function sqlFilter(expression: string): MessageFilter {
  const condition = compileSqlCondition(parseSqlExpression(expression));
  return Object.freeze({
    type: 'SQL92',
    expression,
    matchesTagHash: () => true,
    matches: (tag: string | undefined, properties: SqlProperties) => condition(tag, properties) === true,
  });
}
