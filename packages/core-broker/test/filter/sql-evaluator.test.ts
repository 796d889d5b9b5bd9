import {
  compileSqlCondition,
  sqlNumberFromString,
  TAGS_PROPERTY,
  type SqlTruth,
} from '../../src/filter/sql-evaluator';
import { parseSqlExpression } from '../../src/filter/sql-parser';

/** The three-valued result of `expression` for a message with these properties and tag. */
function evaluate(expression: string, properties: Record<string, string> = {}, tag?: string): SqlTruth {
  return compileSqlCondition(parseSqlExpression(expression))(tag, properties);
}

describe('SQL92 evaluation: comparisons', () => {
  const message = { a: '5', s: 'hello', f: '2.5', neg: '-3', t: 'TRUE', z: 'false', word: 'abc' };

  it.each([
    ['a = 5', true],
    ['a = 6', false],
    ['a = 5.0', true],
    ['a = 5L', true],
    ['a <> 5', false],
    ['a <> 6', true],
    ['a > 4', true],
    ['a > 5', false],
    ['a >= 5', true],
    ['a >= 5.5', false],
    ['a < 6', true],
    ['a < 5', false],
    ['a <= 5', true],
    ['a <= 4.99', false],
    ['f > 2', true],
    ['f < 2.6', true],
    ['neg < 0', true],
    ['neg = -3', true],
    ['-neg = 3', true],
    ['-a < -4', true],
    ['a > -10', true],
    ['5 = a', true],
    ['4 < a', true],
    ['a > f', true],
    ['f > a', false],
    ['1 = 1', true],
    ['1 <> 1', false],
    ['2 > 1', true],
    ['a = 5E0', true],
    ['a < .6e1', true],
  ])('%s → %s', (expression, expected) => {
    expect(evaluate(expression, message)).toBe(expected);
  });

  it.each([
    ["s = 'hello'", true],
    ["s = 'Hello'", false],
    ["s <> 'Hello'", true],
    ["'hello' = s", true],
    ["a = '5'", true],
    ["a = '5.0'", false],
    ['s = word', false],
    ['s <> word', true],
    ["'x' = 'x'", true],
  ])('compares strings exactly: %s → %s', (expression, expected) => {
    expect(evaluate(expression, message)).toBe(expected);
  });

  it('compares a numeric string property to a number literal numerically', () => {
    expect(evaluate('x = 10', { x: '10.0' })).toBe(true);
    expect(evaluate('x = 10', { x: ' 10 ' })).toBe(true);
    expect(evaluate('x = 10', { x: '1e1' })).toBe(true);
    expect(evaluate('x = 10', { x: '+10' })).toBe(true);
    expect(evaluate('x <> 10', { x: '11' })).toBe(true);
  });

  it('makes = and <> FALSE when a string cannot become the number it is compared with', () => {
    expect(evaluate('word = 5', message)).toBe(false);
    expect(evaluate('word <> 5', message)).toBe(false);
    expect(evaluate('x = 0', { x: '' })).toBe(false);
    expect(evaluate('x <> 0', { x: '' })).toBe(false);
  });

  it('orders numbers, never strings: a non-numeric operand makes every ordering NULL, so not delivered even under NOT', () => {
    for (const operator of ['>', '>=', '<', '<=']) {
      expect(evaluate(`word ${operator} 1`, message)).toBeNull();
      expect(evaluate(`1 ${operator} word`, message)).toBeNull();
      expect(evaluate(`s ${operator} word`, message)).toBeNull();
    }
    expect(evaluate('x > 1', { x: 'NaN' })).toBeNull();
    expect(evaluate('x > 1', { x: 'Infinity' })).toBeNull();
    expect(evaluate('x > 1', { x: '0x10' })).toBeNull();
    expect(evaluate('-word < 1', message)).toBeNull();
    expect(evaluate('NOT (word > 1)', message)).toBeNull();
    expect(evaluate('-word = 1', message)).toBe(false);
    expect(evaluate('-word <> 1', message)).toBe(false);
  });

  it('orders two numeric string properties numerically, not lexically', () => {
    expect(evaluate('x > y', { x: '10', y: '9' })).toBe(true);
    expect(evaluate('x < y', { x: '10', y: '9' })).toBe(false);
  });

  it('compares booleans with true/false strings, case-insensitively', () => {
    expect(evaluate('t = TRUE', message)).toBe(true);
    expect(evaluate('t = FALSE', message)).toBe(false);
    expect(evaluate('z = false', message)).toBe(true);
    expect(evaluate('z <> TRUE', message)).toBe(true);
    expect(evaluate('TRUE = t', message)).toBe(true);
    expect(evaluate('x = TRUE', { x: 'tRuE' })).toBe(true);
    expect(evaluate('x = FALSE', { x: 'yes' })).toBe(false);
    expect(evaluate('x <> FALSE', { x: 'yes' })).toBe(false);
    expect(evaluate('TRUE = TRUE', {})).toBe(true);
    expect(evaluate('TRUE <> FALSE', {})).toBe(true);
    expect(evaluate("(a = 5) = (s = 'hello')", message)).toBe(true);
    expect(evaluate('(a = 5) = t', message)).toBe(true);
  });

  it.each([
    ['a BETWEEN 1 AND 10', true],
    ['a BETWEEN 5 AND 5', true],
    ['a BETWEEN 5.5 AND 10', false],
    ['a BETWEEN -1 AND 4.9', false],
    ['a NOT BETWEEN 1 AND 10', false],
    ['a NOT BETWEEN 6 AND 10', true],
    ['a NOT BETWEEN 1 AND 4', true],
    ['f BETWEEN 2 AND 3', true],
    ['a BETWEEN f AND 10', true],
    ['a BETWEEN neg AND f', false],
    ['word BETWEEN 1 AND 10', null],
    ['word NOT BETWEEN 1 AND 10', null],
  ])('BETWEEN is inclusive: %s → %s', (expression, expected) => {
    expect(evaluate(expression, message)).toBe(expected);
  });

  it.each([
    ["s IN ('hello')", true],
    ["s IN ('a', 'b', 'hello', 'c', 'd', 'e')", true],
    ["s IN ('Hello', 'HELLO')", false],
    ["s NOT IN ('a', 'b')", true],
    ["s NOT IN ('hello')", false],
    ["a IN ('5')", true],
    ["a IN ('5.0')", false],
  ])('IN compares strings exactly: %s → %s', (expression, expected) => {
    expect(evaluate(expression, message)).toBe(expected);
  });

  it.each([
    ["s CONTAINS 'ell'", true],
    ["s CONTAINS 'ELL'", false],
    ["s CONTAINS 'hello'", true],
    ["s NOT CONTAINS 'xyz'", true],
    ["s NOT CONTAINS 'll'", false],
    ["s STARTSWITH 'he'", true],
    ["s STARTSWITH 'lo'", false],
    ["s NOT STARTSWITH 'lo'", true],
    ["s NOT STARTSWITH 'h'", false],
    ["s ENDSWITH 'lo'", true],
    ["s ENDSWITH 'he'", false],
    ["s NOT ENDSWITH 'he'", true],
    ["s NOT ENDSWITH 'o'", false],
    ["'literal' CONTAINS 'era'", true],
    ["s CONTAINS ''", false],
    ["s NOT CONTAINS ''", false],
    ["s STARTSWITH ''", false],
    ["s NOT ENDSWITH ''", false],
    ["s CONTAINS 'it''s'", false],
  ])('string operators: %s → %s', (expression, expected) => {
    expect(evaluate(expression, message)).toBe(expected);
  });

  it("matches '' escapes against real quotes", () => {
    expect(evaluate("q = 'it''s'", { q: "it's" })).toBe(true);
    expect(evaluate("q CONTAINS ''''", { q: "it's" })).toBe(true);
    expect(evaluate("q IN ('''quoted''')", { q: "'quoted'" })).toBe(true);
    expect(evaluate("q = ''", { q: '' })).toBe(true);
  });
});

describe('SQL92 evaluation: NULL and three-valued logic', () => {
  it.each([
    'missing = 1',
    "missing = 'x'",
    "'x' = missing",
    'missing <> 1',
    'missing = other',
    'missing > 1',
    'missing <= 1',
    '1 < missing',
    'missing BETWEEN 1 AND 2',
    'missing NOT BETWEEN 1 AND 2',
    "missing IN ('x')",
    "missing NOT IN ('x')",
    "missing CONTAINS 'x'",
    "missing NOT CONTAINS 'x'",
    "missing STARTSWITH 'x'",
    "missing NOT ENDSWITH 'x'",
    '-missing = 1',
    'missing',
    'NOT missing',
    'NULL',
    'NOT NULL',
    'NOT (missing = 1)',
    "NOT (missing CONTAINS 'x')",
  ])('%s is NULL (UNKNOWN) when the property is missing', (expression) => {
    expect(evaluate(expression, { present: '1' })).toBeNull();
  });

  it('IS NULL and IS NOT NULL are never NULL', () => {
    expect(evaluate('missing IS NULL', {})).toBe(true);
    expect(evaluate('missing IS NOT NULL', {})).toBe(false);
    expect(evaluate('p IS NULL', { p: '' })).toBe(false);
    expect(evaluate('p IS NOT NULL', { p: '' })).toBe(true);
    expect(evaluate('(missing = 1) IS NULL', {})).toBe(true);
    expect(evaluate('(p = 1) IS NULL', { p: '1' })).toBe(false);
  });

  const T = 'p = 1';
  const F = 'p = 2';
  const N = 'missing = 1';
  it.each([
    [`${T} AND ${T}`, true],
    [`${T} AND ${F}`, false],
    [`${F} AND ${N}`, false],
    [`${N} AND ${F}`, false],
    [`${T} AND ${N}`, null],
    [`${N} AND ${N}`, null],
    [`${T} OR ${F}`, true],
    [`${F} OR ${F}`, false],
    [`${T} OR ${N}`, true],
    [`${N} OR ${T}`, true],
    [`${F} OR ${N}`, null],
    [`${N} OR ${N}`, null],
    [`NOT (${T})`, false],
    [`NOT (${F})`, true],
    [`NOT (${N})`, null],
    [`${T} AND ${T} AND ${N} AND ${F}`, false],
    [`${F} OR ${N} OR ${F} OR ${T}`, true],
    [`${F} OR ${N} OR ${F}`, null],
    ['TRUE AND NULL', null],
    ['FALSE AND NULL', false],
    ['TRUE OR NULL', true],
    ['NOT FALSE', true],
  ])('%s → %s', (expression, expected) => {
    expect(evaluate(expression, { p: '1' })).toBe(expected);
  });

  it('respects precedence when evaluating: a OR b AND c', () => {
    // Parsed as a OR (b AND c): TRUE whenever a is TRUE.
    expect(evaluate('a = 1 OR b = 1 AND c = 1', { a: '1', b: '0', c: '0' })).toBe(true);
    // (a OR b) AND c would be FALSE here.
    expect(evaluate('(a = 1 OR b = 1) AND c = 1', { a: '1', b: '0', c: '0' })).toBe(false);
    expect(evaluate('a = 1 OR b = 1 AND c = 1', { a: '0', b: '1', c: '1' })).toBe(true);
    expect(evaluate('a = 1 OR b = 1 AND c = 1', { a: '0', b: '1', c: '0' })).toBe(false);
  });

  it('applies NOT to its operand only', () => {
    expect(evaluate('NOT flag', { flag: 'false' })).toBe(true);
    expect(evaluate('NOT flag = TRUE', { flag: 'false' })).toBe(true); // (NOT flag) = TRUE
    expect(evaluate('NOT (flag = TRUE)', { flag: 'false' })).toBe(true);
    expect(evaluate('NOT NOT flag', { flag: 'true' })).toBe(true);
  });
});

describe('SQL92 evaluation: properties and TAGS', () => {
  it('reads a property used as a condition as true/false', () => {
    expect(evaluate('flag', { flag: 'true' })).toBe(true);
    expect(evaluate('flag', { flag: 'TRUE' })).toBe(true);
    expect(evaluate('flag', { flag: 'false' })).toBe(false);
    expect(evaluate('flag', { flag: 'yes' })).toBe(false);
    expect(evaluate('flag AND other', { flag: 'true', other: 'True' })).toBe(true);
  });

  it('treats property names case-sensitively', () => {
    expect(evaluate("Region = 'eu'", { region: 'eu' })).toBeNull();
    expect(evaluate("region = 'eu'", { region: 'eu' })).toBe(true);
  });

  it('reads TAGS from the tag argument, not from the properties', () => {
    expect(evaluate("TAGS = 'TagA'", {}, 'TagA')).toBe(true);
    expect(evaluate("TAGS IN ('TagA', 'TagB')", {}, 'TagB')).toBe(true);
    expect(evaluate("TAGS = 'TagA'", { TAGS: 'TagA' }, 'TagB')).toBe(false);
    expect(evaluate("TAGS = 'TagA'", { TAGS: 'TagA' })).toBeNull();
    expect(evaluate('TAGS IS NULL', {})).toBe(true);
    expect(evaluate('TAGS IS NULL', {}, '')).toBe(true);
    expect(evaluate("tags = 'TagA'", {}, 'TagA')).toBeNull();
    expect(TAGS_PROPERTY).toBe('TAGS');
  });

  it('never reads Object.prototype members as properties', () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']) {
      expect(evaluate(`${name} IS NULL`, {})).toBe(true);
    }
    expect(evaluate("toString = 'x' OR constructor <> 'x'", {})).toBeNull();
    expect(evaluate("constructor = 'x'", { constructor: 'x' })).toBe(true);
  });

  it('evaluates the same compiled condition for many messages', () => {
    const condition = compileSqlCondition(parseSqlExpression("region = 'eu' AND price > 100"));
    const messages: Record<string, string>[] = [
      { region: 'eu', price: '150' },
      { region: 'eu', price: '50' },
      { region: 'us', price: '150' },
      { region: 'eu' },
    ];
    const results = messages.map((properties) => condition(undefined, properties));
    expect(results).toEqual([true, false, false, null]);
  });
});

describe('sqlNumberFromString', () => {
  it.each([
    ['0', 0],
    ['12', 12],
    ['-1.5', -1.5],
    ['+7', 7],
    ['.5', 0.5],
    ['5.', 5],
    ['1e3', 1000],
    ['1E-2', 0.01],
    ['2.5e+1', 25],
    ['  42\t', 42],
    ['007', 7],
  ])('%j → %d', (text, expected) => {
    expect(sqlNumberFromString(text)).toBe(expected);
  });

  it.each([
    '',
    ' ',
    '-',
    '+',
    '.',
    'e5',
    '1e',
    '1e+',
    '1.2.3',
    'abc',
    '12abc',
    '0x10',
    'NaN',
    'Infinity',
    '1_000',
    '1d',
    '5L',
    '1 2',
    '١٢',
  ])('%j is not a number', (text) => {
    expect(sqlNumberFromString(text)).toBeNaN();
  });
});
