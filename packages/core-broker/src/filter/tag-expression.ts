import { RocketError } from '../common/errors';
import { tagHash } from '../message/tag-hash';
import { invalidFilter } from './filter-error';
import { MAX_FILTER_EXPRESSION_CHARS } from './filter-limits';

/** The expression that subscribes to every tag (RocketMQ's `SubscriptionData.SUB_ALL`). */
export const SUBSCRIBE_ALL_EXPRESSION = '*';

/** The separator between alternatives in a tag expression, as in RocketMQ (`TagA || TagB`). */
const TAG_SEPARATOR = '||';

/**
 * A compiled RocketMQ tag expression (`FilterType.TAG`). RocketMQ's `FilterAPI.buildSubscriptionData`
 * keeps the same two sets: `tagsSet` for the exact comparison and `codeSet` for the first pass over
 * consume-queue entries, which carry only the tag hash.
 */
export interface TagExpression {
  /** True for `*` or an empty/whitespace expression: every message matches, tagged or not. */
  readonly matchAll: boolean;
  /** The accepted tags, trimmed and de-duplicated; empty when {@link matchAll}. */
  readonly tags: ReadonlySet<string>;
  /** `tagHash()` of each accepted tag; empty when {@link matchAll}. */
  readonly tagHashes: ReadonlySet<number>;
}

const MATCH_ALL_TAGS: TagExpression = Object.freeze({
  matchAll: true,
  tags: new Set<string>(),
  tagHashes: new Set<number>(),
});

/**
 * Compiles a tag expression. `*`, the empty string and whitespace subscribe to everything; otherwise
 * the expression is tags separated by `||`, each trimmed, empty items ignored (`a || || b` is
 * `a || b`). Throws `INVALID_FILTER` when nothing but separators remains, when a tag contains a
 * single `|` (almost always a typo for `||`; message validation forbids `|` in tags, so such a tag
 * could never match), or when `*` is mixed with tags (RocketMQ would look for a tag literally named
 * `*`, which message validation also forbids).
 */
export function compileTagExpression(expression: string): TagExpression {
  if (typeof expression !== 'string') {
    throw new RocketError('INVALID_ARGUMENT', `A tag expression must be a string, got ${typeof expression}`);
  }
  if (expression.length > MAX_FILTER_EXPRESSION_CHARS) {
    throw invalidFilter(
      'tag expression',
      expression,
      MAX_FILTER_EXPRESSION_CHARS,
      `longer than ${MAX_FILTER_EXPRESSION_CHARS} characters (MAX_FILTER_EXPRESSION_CHARS)`,
    );
  }
  const trimmed = expression.trim();
  if (trimmed === '' || trimmed === SUBSCRIBE_ALL_EXPRESSION) return MATCH_ALL_TAGS;

  const tags = new Set<string>();
  const tagHashes = new Set<number>();
  let itemStart = 0;
  while (itemStart <= expression.length) {
    const separatorAt = expression.indexOf(TAG_SEPARATOR, itemStart);
    const itemEnd = separatorAt < 0 ? expression.length : separatorAt;
    const raw = expression.slice(itemStart, itemEnd);
    const tag = raw.trim();
    if (tag !== '') {
      const tagOffset = itemStart + raw.indexOf(tag);
      const pipe = tag.indexOf('|');
      if (pipe >= 0) {
        throw invalidFilter(
          'tag expression',
          expression,
          tagOffset + pipe,
          `a single '|' inside tag "${tag}"; separate tags with '||'`,
        );
      }
      if (tag === SUBSCRIBE_ALL_EXPRESSION) {
        throw invalidFilter(
          'tag expression',
          expression,
          tagOffset,
          `'*' must be the whole expression, not one of the tags`,
        );
      }
      tags.add(tag);
      tagHashes.add(tagHash(tag));
    }
    if (separatorAt < 0) break;
    itemStart = separatorAt + TAG_SEPARATOR.length;
  }
  if (tags.size === 0) {
    throw invalidFilter(
      'tag expression',
      expression,
      0,
      `expected at least one tag between the '||' separators`,
    );
  }
  return Object.freeze({ matchAll: false, tags, tagHashes });
}
