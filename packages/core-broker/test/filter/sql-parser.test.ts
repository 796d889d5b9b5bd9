import { isRocketError, type RocketError } from '../../src/common/errors';
import { MAX_FILTER_EXPRESSION_CHARS, MAX_SQL_NESTING_DEPTH } from '../../src/filter/filter-limits';
import { printSqlExpression, quoteSqlString, sqlValueKind } from '../../src/filter/sql-ast';
import { parseSqlExpression } from '../../src/filter/sql-parser';

/** The canonical, fully parenthesised form of the parsed expression. */
function canon(expression: string): string {
  return printSqlExpression(parseSqlExpression(expression));
}

function parseError(expression: string): RocketError {
  try {
    parseSqlExpression(expression);
  } catch (error) {
    if (isRocketError(error)) return error;
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(expression)} to be rejected`);
}

describe('parseSqlExpression: structure', () => {
  it('builds a tree with offsets', () => {
    expect(parseSqlExpression("a > 5 AND TAGS IN ('x', 'y')")).toEqual({
      kind: 'and',
      at: 0,
      operands: [
        {
          kind: 'compare',
          operator: '>',
          at: 0,
          left: { kind: 'property', name: 'a', at: 0 },
          right: { kind: 'number', value: 5, raw: '5', at: 4 },
        },
        {
          kind: 'in',
          negated: false,
          at: 10,
          operand: { kind: 'property', name: 'TAGS', at: 10 },
          values: ['x', 'y'],
        },
      ],
    });
  });

  it.each([
    ['a = 1', '(a = 1)'],
    ['a <> 1', '(a <> 1)'],
    ['a > 1', '(a > 1)'],
    ['a >= 1', '(a >= 1)'],
    ['a < 1', '(a < 1)'],
    ['a <= 1', '(a <= 1)'],
    ['a BETWEEN 1 AND 5', '(a BETWEEN 1 AND 5)'],
    ['a NOT BETWEEN -5 AND 5.5', '(a NOT BETWEEN (-5) AND 5.5)'],
    ["a IN ('x')", "(a IN ('x'))"],
    ["a NOT IN ('x','y' , 'z')", "(a NOT IN ('x', 'y', 'z'))"],
    ['a IS NULL', '(a IS NULL)'],
    ['a IS NOT NULL', '(a IS NOT NULL)'],
    ["a CONTAINS 'x'", "(a CONTAINS 'x')"],
    ["a NOT CONTAINS 'x'", "(a NOT CONTAINS 'x')"],
    ["a STARTSWITH 'x'", "(a STARTSWITH 'x')"],
    ["a NOT STARTSWITH 'x'", "(a NOT STARTSWITH 'x')"],
    ["a ENDSWITH 'x'", "(a ENDSWITH 'x')"],
    ["a NOT ENDSWITH 'x'", "(a NOT ENDSWITH 'x')"],
    ['NOT a', '(NOT a)'],
    ['TRUE', 'TRUE'],
    ['false', 'FALSE'],
    ['NULL', 'NULL'],
    ['flag', 'flag'],
    ['a = -5', '(a = (-5))'],
    ['a = +5', '(a = 5)'],
    ['a = - -5', '(a = (-(-5)))'],
    ['-a > 5', '((-a) > 5)'],
    ['a = 10L', '(a = 10)'],
    ['a = 1.5e3', '(a = 1.5e3)'],
    ["a = 'it''s'", "(a = 'it''s')"],
    ['a = b', '(a = b)'],
    ["'x' = a", "('x' = a)"],
    ['1 = 1', '(1 = 1)'],
    ['((((a = 1))))', '(a = 1)'],
  ])('parses %j as %s', (expression, printed) => {
    expect(canon(expression)).toBe(printed);
  });

  it('gives AND precedence over OR', () => {
    expect(canon('a = 1 OR b = 2 AND c = 3')).toBe('((a = 1) OR ((b = 2) AND (c = 3)))');
    expect(canon('a = 1 AND b = 2 OR c = 3')).toBe('(((a = 1) AND (b = 2)) OR (c = 3))');
    expect(canon('(a = 1 OR b = 2) AND c = 3')).toBe('(((a = 1) OR (b = 2)) AND (c = 3))');
  });

  it('flattens AND and OR chains but keeps parentheses', () => {
    expect(canon('a AND b AND c AND d')).toBe('(a AND b AND c AND d)');
    expect(canon('a OR b OR c')).toBe('(a OR b OR c)');
    expect(canon('a AND (b AND c)')).toBe('(a AND (b AND c))');
    expect(parseSqlExpression('a OR b OR c')).toMatchObject({ kind: 'or', operands: [{}, {}, {}] });
  });

  it('binds comparisons tighter than equality, and equality tighter than AND', () => {
    expect(canon('a > 1 = b')).toBe('((a > 1) = b)');
    expect(canon('a = b IS NULL')).toBe('((a = b) IS NULL)');
    expect(canon('a IS NULL = b')).toBe('((a IS NULL) = b)');
    expect(canon('a = b = c')).toBe('((a = b) = c)');
    expect(canon('a BETWEEN 1 AND 2 AND b BETWEEN 3 AND 4')).toBe(
      '((a BETWEEN 1 AND 2) AND (b BETWEEN 3 AND 4))',
    );
  });

  it('binds NOT tighter than comparisons, as RocketMQ does', () => {
    expect(canon('NOT a = b')).toBe('((NOT a) = b)');
    expect(canon('NOT (a = b)')).toBe('(NOT (a = b))');
    expect(canon('NOT a AND b')).toBe('((NOT a) AND b)');
    expect(canon('NOT NOT a')).toBe('(NOT (NOT a))');
    expect(parseError("NOT a IN ('x')").message).toContain(
      'IN needs a property on its left, not a condition',
    );
  });

  it('reads keywords in any case', () => {
    expect(canon("a between 1 and 2 or b not in ('x') and c is not null and d not contains 'y'")).toBe(
      "((a BETWEEN 1 AND 2) OR ((b NOT IN ('x')) AND (c IS NOT NULL) AND (d NOT CONTAINS 'y')))",
    );
    expect(canon("x StartsWith 'a' Or y EndsWith 'b' oR z = True")).toBe(
      "((x STARTSWITH 'a') OR (y ENDSWITH 'b') OR (z = TRUE))",
    );
  });

  it('keeps property names case-sensitive', () => {
    expect(parseSqlExpression('Region = region')).toMatchObject({
      left: { kind: 'property', name: 'Region' },
      right: { kind: 'property', name: 'region' },
    });
  });

  it('ignores comments anywhere whitespace may appear', () => {
    expect(canon("/* lead */ a -- why\n = /* mid */ 'x' -- trailing")).toBe("(a = 'x')");
  });

  it('classifies node kinds', () => {
    expect(sqlValueKind(parseSqlExpression('a'))).toBe('property');
    expect(sqlValueKind(parseSqlExpression('a = 1'))).toBe('condition');
    expect(sqlValueKind(parseSqlExpression('TRUE'))).toBe('condition');
    expect(sqlValueKind(parseSqlExpression('NULL'))).toBe('null');
  });

  it('quotes strings for printing', () => {
    expect(quoteSqlString("it's ''")).toBe("'it''s '''''");
  });
});

describe('parseSqlExpression: errors', () => {
  it('reports the position and what was expected', () => {
    expect(parseError('a = 1 AND (b > 2').message).toBe(
      `Invalid SQL92 filter: expected ')' but found end of input at line 1, column 17 in "a = 1 AND (b > 2"`,
    );
  });

  it.each([
    ['', 'expected a condition but found end of input', 1],
    ['  -- only a comment', 'expected a condition but found end of input', 20],
    ['a =', 'expected an operand', 4],
    ['a = 1 AND', "expected an operand (a property, a literal or '(') but found end of input", 10],
    ['AND a = 1', "expected an operand (a property, a literal or '(') but found keyword AND", 1],
    ['a = 1 b = 2', 'expected an operator or end of input but found property b', 7],
    ['a = 1)', "expected an operator or end of input but found ')'", 6],
    ['(a = 1', "expected ')' but found end of input", 7],
    ['()', "expected an operand (a property, a literal or '(') but found ')'", 2],
    ['a = = 1', "but found '='", 5],
    [
      'a IN (1, 2)',
      'expected a string literal in the IN list (only strings are allowed) but found number 1',
      7,
    ],
    ["a IN ('x', 2)", 'but found number 2', 12],
    ["a NOT IN ('x' 'y')", "expected ',' or ')' in the NOT IN list but found string 'y'", 15],
    ["a IN 'x'", "expected '(' after IN but found string 'x'", 6],
    ['a IN ()', 'expected a string literal in the IN list', 7],
    ["a IN ('x',)", "but found ')'", 11],
    ['a CONTAINS 1', 'expected a string literal after CONTAINS but found number 1', 12],
    ['a NOT STARTSWITH b', 'expected a string literal after NOT STARTSWITH but found property b', 18],
    ['a ENDSWITH', 'expected a string literal after ENDSWITH but found end of input', 11],
    ['a BETWEEN 1', 'expected AND between the bounds of BETWEEN but found end of input', 12],
    ['a BETWEEN 1 OR 2', 'expected AND between the bounds of BETWEEN but found keyword OR', 13],
    ['a NOT = 1', "expected CONTAINS, STARTSWITH, ENDSWITH, BETWEEN or IN after NOT but found '='", 7],
    ['a NOT LIKE 1', 'after NOT but found property LIKE', 7],
    ['a IS 1', "expected NULL or NOT NULL after 'IS' but found number 1", 6],
    ['a IS NOT 1', "expected NULL after 'IS NOT' but found number 1", 10],
    ["a LIKE 'x%'", 'expected an operator or end of input but found property LIKE', 3],
    ['a = 1 + 2', "expected an operator or end of input but found '+'", 7],
    ["a = 'x' garbage", 'expected an operator or end of input but found property garbage', 9],
    ['a = 5abc', 'found property abc', 6],
    ['IN = 1', 'found keyword IN', 1],
  ])('rejects %j', (expression, detail, column) => {
    const error = parseError(expression);
    expect(error.code).toBe('INVALID_FILTER');
    expect(error.retriable).toBe(false);
    expect(error.message).toContain(detail);
    expect(error.message).toContain(` at line 1, column ${column} in ${JSON.stringify(expression)}`);
  });

  it('reports lines and columns in multi-line filters', () => {
    const error = parseError("a = 1\nAND b IN (\n  'x',\n  3)");
    expect(error.message).toContain('but found number 3 at line 4, column 3');
  });

  it.each([
    ['5', 'the filter needs a condition (a comparison, TRUE, FALSE or a property), not the number 5', 1],
    ["'x'", "the filter needs a condition (a comparison, TRUE, FALSE or a property), not the string 'x'", 1],
    ['-a', 'the filter needs a condition', 1],
    ['a = 1 AND 5', 'AND needs a condition (a comparison, TRUE, FALSE or a property), not the number 5', 11],
    ["'x' OR a = 1", "OR needs a condition (a comparison, TRUE, FALSE or a property), not the string 'x'", 1],
    ['NOT 5', 'NOT needs a condition', 5],
    ['a = NULL', "NULL cannot be compared with '='; use IS NULL or IS NOT NULL", 3],
    ['NULL <> a', "NULL cannot be compared with '<>'", 6],
    ["a > 'x'", "'>' compares numbers only and cannot order the string 'x'", 3],
    ["'5' <= 6", "'<=' compares numbers only", 5],
    ['a > TRUE', "TRUE cannot be compared with '>'", 3],
    ['a < NULL', "NULL cannot be compared with '<'", 3],
    ['a > 1 > 2', "a condition cannot be compared with '>'", 7],
    ['NOT a > 5', "a condition cannot be compared with '>' (NOT binds tighter than comparisons", 7],
    ["NOT a = 'x'", "cannot compare a condition with the string 'x' using '=' (NOT binds tighter", 7],
    ['TRUE = 1', "cannot compare a condition with the number 1 using '='", 6],
    ["(a = 1) <> 'b'", "cannot compare a condition with the string 'b' using '<>'", 9],
    ["a BETWEEN 'a' AND 'z'", "'BETWEEN' compares numbers only and cannot order the string 'a'", 3],
    ["a NOT BETWEEN 1 AND 'z'", "'NOT BETWEEN' compares numbers only", 3],
    ['a BETWEEN 5 AND 1', 'the lower bound of BETWEEN (5) is greater than the upper bound (1)', 3],
    [
      'a NOT BETWEEN -1 AND -2',
      'the lower bound of NOT BETWEEN (-1) is greater than the upper bound (-2)',
      3,
    ],
    ['a BETWEEN NULL AND 1', "NULL cannot be compared with 'BETWEEN'", 3],
    ["'x' IN ('x')", "IN needs a property on its left, not the string 'x'", 5],
    ["(a = 1) NOT IN ('x')", 'NOT IN needs a property on its left, not a condition', 9],
    ["5 CONTAINS 'x'", 'CONTAINS needs a property or a string on its left, not the number 5', 3],
    ["(a = 1) ENDSWITH 'x'", 'ENDSWITH needs a property or a string on its left, not a condition', 9],
    ["a = -'x'", "unary '-' needs a number or a property, not the string 'x'", 5],
    ['a = +TRUE', "unary '+' needs a number or a property, not TRUE", 5],
    ['a = -(b > 1)', "unary '-' needs a number or a property, not a condition", 5],
  ])('rejects %j (static check)', (expression, detail, column) => {
    const error = parseError(expression);
    expect(error.code).toBe('INVALID_FILTER');
    expect(error.message).toContain(detail);
    expect(error.message).toContain(` at line 1, column ${column} in `);
  });

  it('accepts BETWEEN with equal bounds or non-constant bounds', () => {
    expect(canon('a BETWEEN 3 AND 3')).toBe('(a BETWEEN 3 AND 3)');
    expect(canon('a BETWEEN b AND 1')).toBe('(a BETWEEN b AND 1)');
    expect(canon('a BETWEEN -5 AND -(-1)')).toBe('(a BETWEEN (-5) AND (-(-1)))');
  });

  it('rejects non-string input with INVALID_ARGUMENT', () => {
    expect(() => parseSqlExpression(undefined as unknown as string)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});

describe('parseSqlExpression: limits', () => {
  it('accepts parentheses nested MAX_SQL_NESTING_DEPTH deep and refuses one more', () => {
    const nested = (depth: number) => `${'('.repeat(depth)}a = 1${')'.repeat(depth)}`;
    expect(canon(nested(MAX_SQL_NESTING_DEPTH))).toBe('(a = 1)');
    const error = parseError(nested(MAX_SQL_NESTING_DEPTH + 1));
    expect(error.code).toBe('INVALID_FILTER');
    expect(error.message).toContain(
      `nests deeper than ${MAX_SQL_NESTING_DEPTH} levels (MAX_SQL_NESTING_DEPTH)`,
    );
    expect(error.message).toContain(`column ${MAX_SQL_NESTING_DEPTH + 1}`);
  });

  it('bounds chains of unary operators', () => {
    expect(() => parseSqlExpression(`${'NOT '.repeat(MAX_SQL_NESTING_DEPTH - 1)}a`)).not.toThrow();
    expect(parseError(`${'NOT '.repeat(MAX_SQL_NESTING_DEPTH + 1)}a`).message).toContain('nests deeper');
    expect(parseError(`a = ${'- '.repeat(MAX_SQL_NESTING_DEPTH + 1)}1`).message).toContain('nests deeper');
  });

  it('bounds the tree height of chains that need no parentheses', () => {
    const chain = (length: number) => Array.from({ length }, (_, i) => `p${i}`).join(' = ');
    expect(() => parseSqlExpression(chain(MAX_SQL_NESTING_DEPTH))).not.toThrow();
    expect(parseError(chain(MAX_SQL_NESTING_DEPTH + 1)).message).toContain('nests deeper');
    expect(parseError(`a${' IS NULL'.repeat(MAX_SQL_NESTING_DEPTH + 1)}`).message).toContain('nests deeper');
  });

  it('lets long flat AND/OR chains through', () => {
    const terms = Array.from({ length: 250 }, (_, i) => `p${i} = '${i}'`);
    const tree = parseSqlExpression(terms.join(' OR '));
    expect(tree).toMatchObject({ kind: 'or' });
    expect(tree.kind === 'or' && tree.operands.length).toBe(250);
  });

  it('refuses an expression longer than MAX_FILTER_EXPRESSION_CHARS', () => {
    const values = Array.from({ length: 2000 }, (_, i) => `'${i}'`).join(',');
    const error = parseError(`a IN (${values})`);
    expect(error.code).toBe('INVALID_FILTER');
    expect(error.message).toContain(`longer than ${MAX_FILTER_EXPRESSION_CHARS} characters`);
  });

  it('refuses hostile nesting without overflowing the stack', () => {
    for (const hostile of [
      '('.repeat(4000),
      'NOT '.repeat(1000),
      '-'.repeat(1) + ' -'.repeat(2000),
      'a' + ' IS NULL'.repeat(500),
    ]) {
      const error = parseError(hostile);
      expect(error.code).toBe('INVALID_FILTER');
    }
  });
});
