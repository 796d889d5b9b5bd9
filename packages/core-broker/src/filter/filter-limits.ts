/**
 * Bounds on every filter expression a consumer can hand the broker. Subscriptions arrive from the
 * network, so a hostile or buggy client must not be able to make the broker spend unbounded time or
 * stack compiling one. RocketMQ itself has no explicit limits here (it relies on the request-header
 * size and on JavaCC's recursion); these constants are RocketNest's own.
 */

/**
 * Longest tag expression or SQL92 filter accepted, in UTF-16 code units (JavaScript string length).
 * Real subscriptions are a few dozen characters; 4096 leaves room for long `IN (...)` lists.
 */
export const MAX_FILTER_EXPRESSION_CHARS = 4096;

/**
 * Deepest nesting a SQL92 filter may have, in levels. Counted two ways and both must stay within it:
 * the parser's nesting of parentheses and unary operators (`NOT`, `-`, `+`), and the height of the
 * syntax tree (so `a = b = c = …` chains, which need no parentheses, are bounded too). `AND`/`OR`
 * chains are flat and cost one level however long they are.
 */
export const MAX_SQL_NESTING_DEPTH = 64;
