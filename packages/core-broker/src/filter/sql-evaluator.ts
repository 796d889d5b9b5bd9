import { AssertionFailure } from '../common/assert';
import type { SqlComparisonOperator, SqlNode } from './sql-ast';

/**
 * Evaluation of a parsed SQL92 filter against one message, following RocketMQ's
 * `ComparisonExpression`/`LogicExpression` (rmq `filter/.../expression/`) with SQL's three-valued
 * logic. The tree is compiled once per subscription into nested closures; evaluating a message
 * allocates nothing beyond what `Number()` needs to parse a property.
 *
 * Values. A property is the message's user property of that name, always a string on the wire, or
 * NULL when the message does not have it. `TAGS` is the message tag (NULL when untagged) and always
 * reads the tag argument, never a user property of that name. Literals are strings, numbers (all
 * IEEE-754 doubles; `L` is accepted and ignored), TRUE, FALSE and NULL.
 *
 * Logic. NOT NULL is NULL; FALSE AND NULL is FALSE; TRUE OR NULL is TRUE; otherwise NULL in gives
 * NULL out. A message is delivered only when the whole filter is TRUE, so a filter that touches a
 * missing property is not delivered unless `IS NULL` or an `OR` branch makes it TRUE.
 *
 * Comparisons. Any operand NULL → NULL (including `=`, `IN`, CONTAINS… — see the choices below).
 * - `=` / `<>`: two strings compare exactly (case-sensitive); two numbers numerically; a string and
 *   a number numerically after converting the string ({@link sqlNumberFromString}); a string and a
 *   boolean by reading the string as `true`/`false`, case-insensitively.
 * - `> >= < <=` and BETWEEN (inclusive): both sides are converted to numbers first, so strings are
 *   never ordered lexically, as in RocketMQ.
 * - `[NOT] IN`: exact string membership.
 * - `[NOT] CONTAINS/STARTSWITH/ENDSWITH`: case-sensitive; an empty pattern never matches in either
 *   form (RocketMQ returns FALSE for it).
 * - A property used as a condition (`WHERE flag`) is TRUE for `true`, FALSE for `false`
 *   (case-insensitive) and FALSE for any other string.
 *
 * Choices where RocketMQ is ambiguous or accidental:
 * - Ordering operands that cannot be converted to numbers (`a > 5` with `a = 'abc'`, BETWEEN too)
 *   make the comparison NULL, so the message is not delivered, also under `NOT (…)`: RocketMQ
 *   throws from `ComparisonExpression` there and delivers nothing. Equality between values that
 *   cannot be converted (`a = 5` with `a = 'abc'`, `a = TRUE` with `a = 'yes'`) is FALSE, and `<>`
 *   is FALSE too, as RocketMQ's `equal` returns false without throwing.
 * - Conversion to a number accepts optional surrounding whitespace, a sign, digits with an optional
 *   fraction and exponent (`12`, `-1.5`, `.5`, `5.`, `1e3`), and nothing else: no `NaN`,
 *   `Infinity`, hex, `1_000` or Java's `d`/`f` suffixes. Unlike RocketMQ, which uses `Long.valueOf`
 *   when the literal is an integer, `'5.0' = 5` and `'5.5' > 5` are TRUE.
 * - Any comparison with NULL is NULL in both operand orders. RocketMQ's `=` returns FALSE for
 *   `'x' = missing` but NULL for `missing = 'x'`, TRUE for `missing1 = missing2`, and FALSE (not
 *   NULL) for CONTAINS/STARTSWITH/ENDSWITH on a missing property, so `NOT (a CONTAINS 'x')` delivers
 *   a message without `a` there and not here.
 * - A boolean compared to a string other than `true`/`false` is FALSE (RocketMQ's
 *   `Boolean.valueOf` reads every other string as false, so `'yes' = FALSE` would be TRUE there).
 */

/** A message's user properties; all values are strings. */
export type SqlProperties = Readonly<Record<string, string>>;

/** The value of a condition: TRUE, FALSE, or `null` for SQL's UNKNOWN. */
export type SqlTruth = boolean | null;

/** A compiled SQL92 filter: three-valued result for one message. Deliver only on `true`. */
export type SqlCondition = (tag: string | undefined, properties: SqlProperties) => SqlTruth;

/** The property name RocketMQ gives the message tag in filters. */
export const TAGS_PROPERTY = 'TAGS';

type SqlValue = string | number | boolean | null;
type Evaluate = (tag: string | undefined, properties: SqlProperties) => SqlValue;

/** Results of {@link equality} and {@link order}; -1/0/1 are less/same/greater. */
const SAME = 0;
const DIFFERENT = 1;
const UNKNOWN = 2;
const INCOMPARABLE = 3;

/**
 * Compiles a tree from `parseSqlExpression` into a condition. The tree must have passed the
 * parser's checks; do it once per subscription and reuse the result for every message.
 */
export function compileSqlCondition(node: SqlNode): SqlCondition {
  return condition(node);
}

/**
 * How a property string becomes a number for `> >= < <=`, BETWEEN, unary minus and comparison with
 * a number literal: the decimal number it spells, or NaN when it is not one (see the file comment).
 */
export function sqlNumberFromString(text: string): number {
  let start = 0;
  let end = text.length;
  while (start < end && isSpace(text.charCodeAt(start))) start++;
  while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
  let i = start;
  const sign = text.charCodeAt(i);
  if (sign === 0x2b /* + */ || sign === 0x2d /* - */) i++;
  let digits = 0;
  while (i < end && isDigit(text.charCodeAt(i))) {
    i++;
    digits++;
  }
  if (i < end && text.charCodeAt(i) === 0x2e /* . */) {
    i++;
    while (i < end && isDigit(text.charCodeAt(i))) {
      i++;
      digits++;
    }
  }
  if (digits === 0) return NaN;
  if (i < end && (text.charCodeAt(i) | 0x20) === 0x65 /* e */) {
    i++;
    const exponentSign = text.charCodeAt(i);
    if (exponentSign === 0x2b || exponentSign === 0x2d) i++;
    const exponentStart = i;
    while (i < end && isDigit(text.charCodeAt(i))) i++;
    if (i === exponentStart) return NaN;
  }
  if (i !== end) return NaN;
  return Number(text);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** The whitespace both Java's `trim()` (for Double.valueOf) and JavaScript's `Number()` skip. */
function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/** `true`/`false` in any case, else `undefined`. */
function booleanFromString(text: string): boolean | undefined {
  if (text.length === 4) {
    const t = text.charCodeAt(0) | 0x20;
    const r = text.charCodeAt(1) | 0x20;
    const u = text.charCodeAt(2) | 0x20;
    const e = text.charCodeAt(3) | 0x20;
    if (t === 0x74 && r === 0x72 && u === 0x75 && e === 0x65) return true;
  } else if (text.length === 5) {
    const f = text.charCodeAt(0) | 0x20;
    const a = text.charCodeAt(1) | 0x20;
    const l = text.charCodeAt(2) | 0x20;
    const s = text.charCodeAt(3) | 0x20;
    const e = text.charCodeAt(4) | 0x20;
    if (f === 0x66 && a === 0x61 && l === 0x6c && s === 0x73 && e === 0x65) return false;
  }
  return undefined;
}

function toNumber(value: string | number | boolean): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') return sqlNumberFromString(value);
  return NaN;
}

function numberOrNull(value: SqlValue): number | null {
  return value === null ? null : toNumber(value);
}

/** SAME, DIFFERENT, UNKNOWN (a NULL operand) or INCOMPARABLE (no conversion applies). */
function equality(left: SqlValue, right: SqlValue): number {
  if (left === null || right === null) return UNKNOWN;
  if (typeof left === typeof right) {
    if (typeof left === 'number' && (Number.isNaN(left) || Number.isNaN(right))) return INCOMPARABLE;
    return left === right ? SAME : DIFFERENT;
  }
  // The types differ: string vs number, string vs boolean, or number vs boolean.
  if (typeof left === 'string' && typeof right !== 'string') return mixedEquality(right, left);
  if (typeof right === 'string' && typeof left !== 'string') return mixedEquality(left, right);
  return INCOMPARABLE;
}

function mixedEquality(value: number | boolean, text: string): number {
  if (typeof value === 'number') {
    const converted = sqlNumberFromString(text);
    if (Number.isNaN(converted) || Number.isNaN(value)) return INCOMPARABLE;
    return converted === value ? SAME : DIFFERENT;
  }
  const converted = booleanFromString(text);
  if (converted === undefined) return INCOMPARABLE;
  return converted === value ? SAME : DIFFERENT;
}

/** -1, 0, 1, UNKNOWN (a NULL operand) or INCOMPARABLE (an operand is not a number). */
function order(left: SqlValue, right: SqlValue): number {
  if (left === null || right === null) return UNKNOWN;
  const l = toNumber(left);
  const r = toNumber(right);
  if (Number.isNaN(l) || Number.isNaN(r)) return INCOMPARABLE;
  return l < r ? -1 : l > r ? 1 : SAME;
}

/** Applies an ordering operator to a result of {@link order}. */
function ordered(operator: SqlComparisonOperator, result: number): SqlTruth {
  // RocketMQ throws when it cannot order the operands and the message is not delivered; NULL gives
  // the same outcome and stays undelivered under NOT, where FALSE would flip to TRUE.
  if (result === UNKNOWN || result === INCOMPARABLE) return null;
  switch (operator) {
    case '>':
      return result > 0;
    case '>=':
      return result >= 0;
    case '<':
      return result < 0;
    default:
      return result <= 0;
  }
}

function and3(left: SqlTruth, right: SqlTruth): SqlTruth {
  if (left === false || right === false) return false;
  return left === null || right === null ? null : true;
}

function or3(left: SqlTruth, right: SqlTruth): SqlTruth {
  if (left === true || right === true) return true;
  return left === null || right === null ? null : false;
}

function value(node: SqlNode): Evaluate {
  switch (node.kind) {
    case 'string':
    case 'number':
    case 'boolean': {
      const constant = node.value;
      return () => constant;
    }
    case 'null':
      return () => null;
    case 'property':
      return property(node.name);
    case 'negate': {
      const operand = value(node.operand);
      return (tag, properties) => {
        const v = operand(tag, properties);
        // A property that is not a number negates to NaN, which every comparison treats as
        // incomparable (FALSE), the same as the property itself would be.
        return v === null ? null : -toNumber(v);
      };
    }
    default:
      return condition(node);
  }
}

function property(name: string): Evaluate {
  if (name === TAGS_PROPERTY) return (tag) => (tag === undefined || tag === '' ? null : tag);
  return (_tag, properties) => {
    const v = properties[name];
    // Only strings count, so inherited members (`constructor`, `toString`, `__proto__`) read as
    // missing. No `hasOwnProperty` call: it halves the speed of a simple `=` and guards only
    // against string values planted on Object.prototype.
    return typeof v === 'string' ? v : null;
  };
}

function condition(node: SqlNode): SqlCondition {
  switch (node.kind) {
    case 'boolean': {
      const constant = node.value;
      return () => constant;
    }
    case 'null':
      return () => null;
    case 'property': {
      // RocketMQ's `createBooleanCast`; its property values were never Booleans, so it was always
      // FALSE; reading `true`/`false` makes `WHERE flag` useful and is otherwise the same.
      const read = property(node.name);
      return (tag, properties) => {
        const v = read(tag, properties);
        return v === null ? null : booleanFromString(v as string) === true;
      };
    }
    case 'not': {
      const operand = condition(node.operand);
      return (tag, properties) => {
        const v = operand(tag, properties);
        return v === null ? null : !v;
      };
    }
    case 'and':
    case 'or':
      return logic(node.kind, node.operands.map(condition));
    case 'compare':
      return comparison(node.operator, value(node.left), value(node.right));
    case 'isNull': {
      const operand = value(node.operand);
      const negated = node.negated;
      return (tag, properties) => (operand(tag, properties) === null) !== negated;
    }
    case 'between': {
      const operand = value(node.operand);
      const low = value(node.low);
      const high = value(node.high);
      // The operand is converted to a number once, not once per bound.
      if (node.negated) {
        // RocketMQ: `x < low OR x > high`.
        return (tag, properties) => {
          const v = numberOrNull(operand(tag, properties));
          return or3(
            ordered('<', order(v, low(tag, properties))),
            ordered('>', order(v, high(tag, properties))),
          );
        };
      }
      // RocketMQ: `x >= low AND x <= high`.
      return (tag, properties) => {
        const v = numberOrNull(operand(tag, properties));
        return and3(
          ordered('>=', order(v, low(tag, properties))),
          ordered('<=', order(v, high(tag, properties))),
        );
      };
    }
    case 'in': {
      const operand = property(node.operand.name);
      const values: ReadonlySet<string> = new Set(node.values);
      const negated = node.negated;
      return (tag, properties) => {
        const v = operand(tag, properties);
        return v === null ? null : values.has(v as string) !== negated;
      };
    }
    case 'stringMatch': {
      const operand = value(node.operand);
      const pattern = node.pattern;
      const negated = node.negated;
      if (pattern === '') return () => false;
      const test =
        node.operator === 'CONTAINS'
          ? (s: string) => s.includes(pattern)
          : node.operator === 'STARTSWITH'
            ? (s: string) => s.startsWith(pattern)
            : (s: string) => s.endsWith(pattern);
      return (tag, properties) => {
        const v = operand(tag, properties);
        if (v === null) return null;
        return typeof v === 'string' ? test(v) !== negated : false;
      };
    }
    case 'string':
    case 'number':
    case 'negate':
      // The parser never lets a literal or number stand as a condition.
      throw new AssertionFailure(`a ${node.kind} node cannot be compiled as a condition`);
  }
}

function logic(kind: 'and' | 'or', operands: readonly SqlCondition[]): SqlCondition {
  // AND stops at the first FALSE, OR at the first TRUE; otherwise any NULL makes the result NULL.
  const decisive = kind === 'or';
  const count = operands.length;
  return (tag, properties) => {
    let unknown = false;
    for (let i = 0; i < count; i++) {
      const v = operands[i]!(tag, properties);
      if (v === decisive) return decisive;
      if (v === null) unknown = true;
    }
    return unknown ? null : !decisive;
  };
}

function comparison(operator: SqlComparisonOperator, left: Evaluate, right: Evaluate): SqlCondition {
  if (operator === '=' || operator === '<>') {
    const whenSame = operator === '=';
    return (tag, properties) => {
      const result = equality(left(tag, properties), right(tag, properties));
      if (result === UNKNOWN) return null;
      if (result === INCOMPARABLE) return false;
      return (result === SAME) === whenSame;
    };
  }
  return (tag, properties) => ordered(operator, order(left(tag, properties), right(tag, properties)));
}
