/**
 * The syntax tree of a SQL92 filter, as produced by `parseSqlExpression`. Parentheses and unary `+`
 * leave no node; `AND`/`OR` chains are flattened into one node with all their operands. Every node
 * records `at`, the 0-based offset of its first character, for error messages.
 */

export type SqlComparisonOperator = '=' | '<>' | '>' | '>=' | '<' | '<=';

/** RocketMQ's string operators; the pattern is always a string literal. */
export type SqlStringMatchOperator = 'CONTAINS' | 'STARTSWITH' | 'ENDSWITH';

export interface SqlStringLiteral {
  readonly kind: 'string';
  readonly value: string;
  readonly at: number;
}

export interface SqlNumberLiteral {
  readonly kind: 'number';
  readonly value: number;
  /** The literal as written (without the `L` suffix), so printing keeps it exact. */
  readonly raw: string;
  readonly at: number;
}

export interface SqlBooleanLiteral {
  readonly kind: 'boolean';
  readonly value: boolean;
  readonly at: number;
}

export interface SqlNullLiteral {
  readonly kind: 'null';
  readonly at: number;
}

/** A message user property; `TAGS` is the message tag. Names are case-sensitive. */
export interface SqlProperty {
  readonly kind: 'property';
  readonly name: string;
  readonly at: number;
}

/** Unary minus. */
export interface SqlNegate {
  readonly kind: 'negate';
  readonly operand: SqlNode;
  readonly at: number;
}

export interface SqlNot {
  readonly kind: 'not';
  readonly operand: SqlNode;
  readonly at: number;
}

export interface SqlLogic {
  readonly kind: 'and' | 'or';
  /** Two or more operands, in source order. */
  readonly operands: readonly SqlNode[];
  readonly at: number;
}

export interface SqlComparison {
  readonly kind: 'compare';
  readonly operator: SqlComparisonOperator;
  readonly left: SqlNode;
  readonly right: SqlNode;
  readonly at: number;
}

/** `x IS NULL`, or `x IS NOT NULL` when `negated`. */
export interface SqlIsNull {
  readonly kind: 'isNull';
  readonly negated: boolean;
  readonly operand: SqlNode;
  readonly at: number;
}

/** `x [NOT] BETWEEN low AND high`, bounds inclusive. */
export interface SqlBetween {
  readonly kind: 'between';
  readonly negated: boolean;
  readonly operand: SqlNode;
  readonly low: SqlNode;
  readonly high: SqlNode;
  readonly at: number;
}

/** `property [NOT] IN ('a', 'b')`; RocketMQ allows only a property on the left and strings in the list. */
export interface SqlIn {
  readonly kind: 'in';
  readonly negated: boolean;
  readonly operand: SqlProperty;
  readonly values: readonly string[];
  readonly at: number;
}

/** `x [NOT] CONTAINS 's'`, `x [NOT] STARTSWITH 's'`, `x [NOT] ENDSWITH 's'`. */
export interface SqlStringMatch {
  readonly kind: 'stringMatch';
  readonly operator: SqlStringMatchOperator;
  readonly negated: boolean;
  readonly operand: SqlNode;
  readonly pattern: string;
  readonly at: number;
}

export type SqlNode =
  | SqlStringLiteral
  | SqlNumberLiteral
  | SqlBooleanLiteral
  | SqlNullLiteral
  | SqlProperty
  | SqlNegate
  | SqlNot
  | SqlLogic
  | SqlComparison
  | SqlIsNull
  | SqlBetween
  | SqlIn
  | SqlStringMatch;

/**
 * What a node can produce, known before any message is seen. RocketMQ's parser applies the same
 * static checks (`checkLessThanOperand`, `checkEqualOperand`, `asBooleanExpression`): a `condition`
 * yields TRUE/FALSE/NULL; a `property` yields a string or NULL and can stand for a number or a
 * condition; the other kinds are literals (or negated numbers).
 */
export type SqlValueKind = 'condition' | 'property' | 'number' | 'string' | 'null';

export function sqlValueKind(node: SqlNode): SqlValueKind {
  switch (node.kind) {
    case 'string':
      return 'string';
    case 'number':
    case 'negate':
      return 'number';
    case 'null':
      return 'null';
    case 'property':
      return 'property';
    default:
      return 'condition';
  }
}

/**
 * Prints a tree back as a SQL92 filter in a canonical, fully parenthesised form with upper-case
 * keywords, e.g. `((a > 5) AND (TAGS IN ('x', 'y')))`. Parsing the output gives the same tree (apart
 * from `at`), so the text can serve as a normalised key for a subscription, and in logs.
 */
export function printSqlExpression(node: SqlNode): string {
  switch (node.kind) {
    case 'string':
      return quoteSqlString(node.value);
    case 'number':
      return node.raw;
    case 'boolean':
      return node.value ? 'TRUE' : 'FALSE';
    case 'null':
      return 'NULL';
    case 'property':
      return node.name;
    case 'negate':
      return `(-${printSqlExpression(node.operand)})`;
    case 'not':
      return `(NOT ${printSqlExpression(node.operand)})`;
    case 'and':
    case 'or':
      return `(${node.operands.map(printSqlExpression).join(node.kind === 'and' ? ' AND ' : ' OR ')})`;
    case 'compare':
      return `(${printSqlExpression(node.left)} ${node.operator} ${printSqlExpression(node.right)})`;
    case 'isNull':
      return `(${printSqlExpression(node.operand)} IS ${node.negated ? 'NOT ' : ''}NULL)`;
    case 'between':
      return `(${printSqlExpression(node.operand)} ${node.negated ? 'NOT ' : ''}BETWEEN ${printSqlExpression(node.low)} AND ${printSqlExpression(node.high)})`;
    case 'in':
      return `(${node.operand.name} ${node.negated ? 'NOT ' : ''}IN (${node.values.map(quoteSqlString).join(', ')}))`;
    case 'stringMatch':
      return `(${printSqlExpression(node.operand)} ${node.negated ? 'NOT ' : ''}${node.operator} ${quoteSqlString(node.pattern)})`;
  }
}

/** A SQL92 string literal: single quotes, inner quotes doubled. */
export function quoteSqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
