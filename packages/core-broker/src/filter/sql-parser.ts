import { RocketError } from '../common/errors';
import { invalidFilter } from './filter-error';
import { MAX_SQL_NESTING_DEPTH } from './filter-limits';
import {
  sqlValueKind,
  type SqlComparisonOperator,
  type SqlNode,
  type SqlStringMatchOperator,
  type SqlValueKind,
} from './sql-ast';
import { tokenizeSql, type SqlKeyword, type SqlToken } from './sql-lexer';

/**
 * Recursive-descent parser for RocketMQ's SQL92 filter grammar (rmq `SelectorParser.jj`, itself
 * ActiveMQ's JMS selector grammar without arithmetic, LIKE and hex/octal literals). Precedence, from
 * loosest to tightest, and the productions:
 *
 * ```
 * condition  := or END
 * or         := and (OR and)*
 * and        := equality (AND equality)*
 * equality   := comparison ( '=' comparison | '<>' comparison | IS NULL | IS NOT NULL )*
 * comparison := unary ( ('>'|'>='|'<'|'<=') unary
 *                     | [NOT] BETWEEN unary AND unary
 *                     | [NOT] IN '(' string (',' string)* ')'
 *                     | [NOT] (CONTAINS|STARTSWITH|ENDSWITH) string )*
 * unary      := '+' unary | '-' unary | NOT unary | primary
 * primary    := string | decimal | float | TRUE | FALSE | NULL | identifier | '(' or ')'
 * ```
 *
 * Note that `NOT` is a unary operator and binds tighter than any comparison, exactly as in RocketMQ:
 * `NOT a = 'x'` means `(NOT a) = 'x'`. Write `NOT (a = 'x')` or `a <> 'x'`.
 *
 * After the grammar, the parser applies RocketMQ's static checks, each an `INVALID_FILTER` error at
 * the offending operator: the whole filter and every operand of AND/OR/NOT must be a condition (or a
 * property); `NULL` cannot be an operand of `=`/`<>`; `> >= < <=` and BETWEEN take only numbers and
 * properties (strings are never ordered); BETWEEN with two constant bounds needs low <= high; IN
 * needs a property on its left. RocketNest adds three checks RocketMQ leaves to run time, where they
 * would silently never match: a condition compared with `=`/`<>` to a string or number, unary `-`/`+`
 * on anything but a number or property, and CONTAINS/STARTSWITH/ENDSWITH on a number or condition.
 */
export function parseSqlExpression(expression: string): SqlNode {
  if (typeof expression !== 'string') {
    throw new RocketError('INVALID_ARGUMENT', `A SQL92 filter must be a string, got ${typeof expression}`);
  }
  return new SqlParser(expression, tokenizeSql(expression)).parseFilter();
}

const ORDERING_OPERATORS: ReadonlySet<string> = new Set(['>', '>=', '<', '<=']);
const STRING_MATCH_OPERATORS: ReadonlySet<string> = new Set(['CONTAINS', 'STARTSWITH', 'ENDSWITH']);

class SqlParser {
  private index = 0;
  /** Current nesting of parentheses and unary operators. */
  private depth = 0;
  /** Height of every interior node built so far; leaves are height 1. */
  private readonly heights = new WeakMap<SqlNode, number>();

  constructor(
    private readonly expression: string,
    private readonly tokens: readonly SqlToken[],
  ) {}

  parseFilter(): SqlNode {
    const first = this.peek();
    if (first.kind === 'end') {
      this.fail(first, 'expected a condition but found end of input (a SQL92 filter cannot be empty)');
    }
    const node = this.parseOr();
    const last = this.peek();
    if (last.kind !== 'end') {
      this.fail(last, `expected an operator or end of input but found ${describe(last)}`);
    }
    this.requireCondition(node, 'the filter');
    return node;
  }

  // ---- grammar -------------------------------------------------------------------------------

  private parseOr(): SqlNode {
    return this.parseLogic('OR', () => this.parseAnd());
  }

  private parseAnd(): SqlNode {
    return this.parseLogic('AND', () => this.parseEquality());
  }

  private parseLogic(keyword: 'AND' | 'OR', operand: () => SqlNode): SqlNode {
    const first = operand();
    if (!this.isKeyword(this.peek(), keyword)) return first;
    this.requireCondition(first, keyword);
    const operatorToken = this.peek();
    const operands = [first];
    while (this.isKeyword(this.peek(), keyword)) {
      this.next();
      const right = operand();
      this.requireCondition(right, keyword);
      operands.push(right);
    }
    return this.build(
      { kind: keyword === 'AND' ? 'and' : 'or', operands, at: first.at },
      operatorToken,
      ...operands,
    );
  }

  private parseEquality(): SqlNode {
    let left = this.parseComparison();
    for (;;) {
      const token = this.peek();
      if (this.isSymbol(token, '=') || this.isSymbol(token, '<>')) {
        this.next();
        const right = this.parseComparison();
        this.checkEqualityOperands(token, left, right);
        const operator = token.value as SqlComparisonOperator;
        left = this.build({ kind: 'compare', operator, left, right, at: left.at }, token, left, right);
      } else if (this.isKeyword(token, 'IS')) {
        this.next();
        const negated = this.acceptKeyword('NOT');
        this.expectKeyword(
          'NULL',
          negated ? "expected NULL after 'IS NOT'" : "expected NULL or NOT NULL after 'IS'",
        );
        left = this.build({ kind: 'isNull', negated, operand: left, at: left.at }, token, left);
      } else {
        return left;
      }
    }
  }

  private parseComparison(): SqlNode {
    let left = this.parseUnary();
    for (;;) {
      const token = this.peek();
      if (token.kind === 'symbol' && ORDERING_OPERATORS.has(token.value)) {
        this.next();
        const right = this.parseUnary();
        this.requireOrderable(left, token.value, token);
        this.requireOrderable(right, token.value, token);
        const operator = token.value as SqlComparisonOperator;
        left = this.build({ kind: 'compare', operator, left, right, at: left.at }, token, left, right);
        continue;
      }
      // Errors about the operator point at its first word: NOT in `a NOT IN (…)`.
      let negated = false;
      if (this.isKeyword(token, 'NOT')) {
        const after = this.peek(1);
        const negatable =
          after.kind === 'keyword' &&
          (STRING_MATCH_OPERATORS.has(after.value) || after.value === 'BETWEEN' || after.value === 'IN');
        if (!negatable) {
          this.fail(
            after,
            `expected CONTAINS, STARTSWITH, ENDSWITH, BETWEEN or IN after NOT but found ${describe(after)}`,
          );
        }
        this.next();
        negated = true;
      }
      const operatorToken = this.peek();
      if (operatorToken.kind !== 'keyword') return left;
      const keyword = operatorToken.value;
      const name = negated ? `NOT ${keyword}` : keyword;
      if (STRING_MATCH_OPERATORS.has(keyword)) {
        this.next();
        const pattern = this.expectString(`expected a string literal after ${name}`);
        const kind = sqlValueKind(left);
        if (kind !== 'property' && kind !== 'string') {
          this.fail(token, `${name} needs a property or a string on its left, not ${describeKind(left)}`);
        }
        const operator = keyword as SqlStringMatchOperator;
        left = this.build(
          { kind: 'stringMatch', operator, negated, operand: left, pattern, at: left.at },
          token,
          left,
        );
      } else if (keyword === 'BETWEEN') {
        this.next();
        const low = this.parseUnary();
        this.expectKeyword('AND', `expected AND between the bounds of ${name}`);
        const high = this.parseUnary();
        for (const operand of [left, low, high]) this.requireOrderable(operand, name, token);
        const lowValue = constantNumber(low);
        const highValue = constantNumber(high);
        if (lowValue !== undefined && highValue !== undefined && lowValue > highValue) {
          // RocketMQ's `createBetween` rejects this too (its NOT BETWEEN does not check, but a
          // reversed NOT BETWEEN matches every number, which is just as surely a mistake).
          this.fail(
            token,
            `the lower bound of ${name} (${lowValue}) is greater than the upper bound (${highValue})`,
          );
        }
        left = this.build(
          { kind: 'between', negated, operand: left, low, high, at: left.at },
          token,
          left,
          low,
          high,
        );
      } else if (keyword === 'IN') {
        this.next();
        if (left.kind !== 'property') {
          this.fail(token, `${name} needs a property on its left, not ${describeKind(left)}`);
        }
        this.expectSymbol('(', `expected '(' after ${name}`);
        const values = [
          this.expectString(`expected a string literal in the ${name} list (only strings are allowed)`),
        ];
        while (this.acceptSymbol(',')) {
          values.push(
            this.expectString(`expected a string literal in the ${name} list (only strings are allowed)`),
          );
        }
        this.expectSymbol(')', `expected ',' or ')' in the ${name} list`);
        left = this.build({ kind: 'in', negated, operand: left, values, at: left.at }, token, left);
      } else {
        return left;
      }
    }
  }

  private parseUnary(): SqlNode {
    const token = this.peek();
    if (this.isSymbol(token, '+') || this.isSymbol(token, '-') || this.isKeyword(token, 'NOT')) {
      this.next();
      this.enter(token);
      const operand = this.parseUnary();
      this.depth--;
      if (token.kind === 'keyword') {
        this.requireCondition(operand, 'NOT');
        return this.build({ kind: 'not', operand, at: token.offset }, token, operand);
      }
      const kind = sqlValueKind(operand);
      if (kind !== 'number' && kind !== 'property') {
        this.fail(token, `unary '${token.value}' needs a number or a property, not ${describeKind(operand)}`);
      }
      // Unary plus is the identity (as in RocketMQ) and leaves no node.
      if (token.value === '+') return operand;
      return this.build({ kind: 'negate', operand, at: token.offset }, token, operand);
    }
    return this.parsePrimary();
  }

  private parsePrimary(): SqlNode {
    const token = this.next();
    switch (token.kind) {
      case 'string':
        return { kind: 'string', value: token.value, at: token.offset };
      case 'decimal':
      case 'float':
        return { kind: 'number', value: Number(token.value), raw: token.value, at: token.offset };
      case 'identifier':
        return { kind: 'property', name: token.value, at: token.offset };
      case 'keyword':
        if (token.value === 'TRUE' || token.value === 'FALSE') {
          return { kind: 'boolean', value: token.value === 'TRUE', at: token.offset };
        }
        if (token.value === 'NULL') return { kind: 'null', at: token.offset };
        break;
      case 'symbol':
        if (token.value === '(') {
          this.enter(token);
          const inner = this.parseOr();
          this.expectSymbol(')', "expected ')'");
          this.depth--;
          return inner;
        }
        break;
    }
    return this.fail(
      token,
      `expected an operand (a property, a literal or '(') but found ${describe(token)}`,
    );
  }

  // ---- static checks -------------------------------------------------------------------------

  /** RocketMQ's `asBooleanExpression`: conditions, NULL and properties can be used as a condition. */
  private requireCondition(node: SqlNode, context: string): void {
    const kind = sqlValueKind(node);
    if (kind === 'condition' || kind === 'property' || kind === 'null') return;
    this.failAt(
      node.at,
      `${context} needs a condition (a comparison, TRUE, FALSE or a property), not ${describeKind(node)}`,
    );
  }

  /** RocketMQ's `checkLessThanOperand`: only numbers and properties can be ordered. */
  private requireOrderable(node: SqlNode, operator: string, token: SqlToken): void {
    const kind = sqlValueKind(node);
    if (kind === 'number' || kind === 'property') return;
    if (kind === 'string') {
      this.fail(token, `'${operator}' compares numbers only and cannot order ${describeKind(node)}`);
    }
    if (kind === 'null')
      this.fail(token, `NULL cannot be compared with '${operator}'; use IS NULL or IS NOT NULL`);
    this.fail(token, `${describeKind(node)} cannot be compared with '${operator}'${notHint(node)}`);
  }

  /** RocketMQ's `checkEqualOperand` and `checkEqualOperandCompatability`, made symmetric. */
  private checkEqualityOperands(token: SqlToken, left: SqlNode, right: SqlNode): void {
    const leftKind = sqlValueKind(left);
    const rightKind = sqlValueKind(right);
    if (leftKind === 'null' || rightKind === 'null') {
      this.fail(token, `NULL cannot be compared with '${token.value}'; use IS NULL or IS NOT NULL`);
    }
    const literal = (kind: SqlValueKind): boolean => kind === 'number' || kind === 'string';
    if (
      (leftKind === 'condition' && literal(rightKind)) ||
      (rightKind === 'condition' && literal(leftKind))
    ) {
      const condition = leftKind === 'condition' ? left : right;
      const other = condition === left ? right : left;
      this.fail(
        token,
        `cannot compare a condition with ${describeKind(other)} using '${token.value}'${notHint(condition)}`,
      );
    }
  }

  // ---- helpers -------------------------------------------------------------------------------

  /** Records a new interior node's height and refuses trees taller than MAX_SQL_NESTING_DEPTH. */
  private build<T extends SqlNode>(node: T, token: SqlToken, ...children: SqlNode[]): T {
    let height = 0;
    for (const child of children) height = Math.max(height, this.heights.get(child) ?? 1);
    height++;
    if (height > MAX_SQL_NESTING_DEPTH) this.tooDeep(token);
    this.heights.set(node, height);
    return node;
  }

  private enter(token: SqlToken): void {
    this.depth++;
    if (this.depth > MAX_SQL_NESTING_DEPTH) this.tooDeep(token);
  }

  private tooDeep(token: SqlToken): never {
    return this.fail(
      token,
      `the filter nests deeper than ${MAX_SQL_NESTING_DEPTH} levels (MAX_SQL_NESTING_DEPTH)`,
    );
  }

  private peek(ahead = 0): SqlToken {
    const last = this.tokens.length - 1;
    return this.tokens[Math.min(this.index + ahead, last)]!;
  }

  private next(): SqlToken {
    const token = this.peek();
    if (token.kind !== 'end') this.index++;
    return token;
  }

  private isKeyword(token: SqlToken, keyword: SqlKeyword): boolean {
    return token.kind === 'keyword' && token.value === keyword;
  }

  private isSymbol(token: SqlToken, symbol: string): boolean {
    return token.kind === 'symbol' && token.value === symbol;
  }

  private acceptKeyword(keyword: SqlKeyword): boolean {
    if (!this.isKeyword(this.peek(), keyword)) return false;
    this.next();
    return true;
  }

  private acceptSymbol(symbol: string): boolean {
    if (!this.isSymbol(this.peek(), symbol)) return false;
    this.next();
    return true;
  }

  private expectKeyword(keyword: SqlKeyword, expected: string): void {
    const token = this.peek();
    if (!this.isKeyword(token, keyword)) this.fail(token, `${expected} but found ${describe(token)}`);
    this.next();
  }

  private expectSymbol(symbol: string, expected: string): void {
    const token = this.peek();
    if (!this.isSymbol(token, symbol)) this.fail(token, `${expected} but found ${describe(token)}`);
    this.next();
  }

  private expectString(expected: string): string {
    const token = this.peek();
    if (token.kind !== 'string') this.fail(token, `${expected} but found ${describe(token)}`);
    this.next();
    return token.value;
  }

  private fail(token: SqlToken, detail: string): never {
    return this.failAt(token.offset, detail);
  }

  private failAt(offset: number, detail: string): never {
    throw invalidFilter('SQL92 filter', this.expression, offset, detail);
  }
}

/** The numeric value of a number literal or a negated one, else `undefined`. */
function constantNumber(node: SqlNode): number | undefined {
  if (node.kind === 'number') return node.value;
  if (node.kind === 'negate') {
    const inner = constantNumber(node.operand);
    return inner === undefined ? undefined : -inner;
  }
  return undefined;
}

/** A token for an error message: `end of input`, `')'`, `keyword AND`, `string 'x'`… */
function describe(token: SqlToken): string {
  switch (token.kind) {
    case 'end':
      return 'end of input';
    case 'symbol':
      return `'${token.value}'`;
    case 'keyword':
      return `keyword ${token.value}`;
    case 'identifier':
      return `property ${token.value}`;
    case 'string':
      return `string ${abbreviate(token.text)}`;
    case 'decimal':
    case 'float':
      return `number ${abbreviate(token.text)}`;
  }
}

/** A node for an error message: `the string 'x'`, `the number 5`, `NULL`, `a condition`… */
function describeKind(node: SqlNode): string {
  switch (node.kind) {
    case 'string':
      return `the string ${abbreviate(`'${node.value.replaceAll("'", "''")}'`)}`;
    case 'number':
      return `the number ${abbreviate(node.raw)}`;
    case 'negate':
      return 'a number';
    case 'null':
      return 'NULL';
    case 'property':
      return `the property ${node.name}`;
    case 'boolean':
      return node.value ? 'TRUE' : 'FALSE';
    default:
      return 'a condition';
  }
}

/** Points out RocketMQ's precedence trap when the condition is a NOT. */
function notHint(node: SqlNode): string {
  return node.kind === 'not' ? ' (NOT binds tighter than comparisons: write NOT (a = b), not NOT a = b)' : '';
}

const MAX_DESCRIBED_CHARS = 32;

function abbreviate(text: string): string {
  return text.length <= MAX_DESCRIBED_CHARS ? text : `${text.slice(0, MAX_DESCRIBED_CHARS - 1)}…`;
}
