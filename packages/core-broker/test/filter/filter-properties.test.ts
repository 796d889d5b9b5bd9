import fc from 'fast-check';
import { isRocketError } from '../../src/common/errors';
import { tagHash } from '../../src/message/tag-hash';
import { compileFilter } from '../../src/filter/message-filter';
import { printSqlExpression, quoteSqlString, type SqlNode } from '../../src/filter/sql-ast';
import { compileSqlCondition, type SqlTruth } from '../../src/filter/sql-evaluator';
import { tokenizeSql } from '../../src/filter/sql-lexer';
import { parseSqlExpression } from '../../src/filter/sql-parser';

// ---- generators ------------------------------------------------------------------------------

/** Whitespace and comments that may separate any two tokens. */
const gap = fc.constantFrom(' ', '  ', '\n', '\t', '\r\n', ' /* note */ ', ' -- note\n', '/**/ ');

/** A keyword in random case. */
const keyword = (word: string) =>
  fc
    .array(fc.boolean(), { minLength: word.length, maxLength: word.length })
    .map((upper) => [...word].map((c, i) => (upper[i] ? c.toUpperCase() : c.toLowerCase())).join(''));

const propertyNames = ['a', 'b', 'price', 'Region', 'TAGS', '$x', '_y1'];
const property = fc.constantFrom(...propertyNames);
const numberLiteral = fc.oneof(
  fc.nat({ max: 1000 }).map(String),
  fc.constantFrom('0', '5L', '1.5', '.5', '5.', '2E3', '1e-2', '10l'),
);
const stringLiteral = fc.string({ maxLength: 8 }).map(quoteSqlString);
const numeric = fc.oneof(
  property,
  numberLiteral,
  numberLiteral.map((n) => `-${n}`),
  property.map((p) => `-${p}`),
);

const join = (...parts: fc.Arbitrary<string>[]) => fc.tuple(...parts).map((p) => p.join(''));
const text = (value: string) => fc.constant(value);
const sep = gap;

/** A leaf condition that passes the parser's static checks. */
const leafCondition: fc.Arbitrary<string> = fc.oneof(
  join(numeric, sep, fc.constantFrom('>', '>=', '<', '<=', '=', '<>'), sep, numeric),
  join(property, sep, fc.constantFrom('=', '<>'), sep, fc.oneof(stringLiteral, property)),
  join(stringLiteral, sep, fc.constantFrom('=', '<>'), sep, property),
  join(property, sep, fc.constantFrom('=', '<>'), sep, keyword('TRUE')),
  join(
    property,
    sep,
    fc.option(join(keyword('NOT'), sep), { nil: '' }),
    keyword('BETWEEN'),
    sep,
    fc.oneof(
      fc.tuple(fc.nat(100), fc.nat(100)).map(([x, y]) => [Math.min(x, y), Math.max(x, y)].join(' AND ')),
      fc.tuple(property, numeric).map(([p, n]) => `${p} AND ${n}`),
    ),
  ),
  join(
    property,
    sep,
    fc.option(join(keyword('NOT'), sep), { nil: '' }),
    keyword('IN'),
    sep,
    fc.array(stringLiteral, { minLength: 1, maxLength: 4 }).map((values) => `(${values.join(', ')})`),
  ),
  join(property, sep, keyword('IS'), sep, fc.option(join(keyword('NOT'), sep), { nil: '' }), keyword('NULL')),
  join(
    fc.oneof(property, stringLiteral),
    sep,
    fc.option(join(keyword('NOT'), sep), { nil: '' }),
    fc.constantFrom('CONTAINS', 'STARTSWITH', 'ENDSWITH').chain(keyword),
    sep,
    stringLiteral,
  ),
  keyword('TRUE'),
  keyword('FALSE'),
  keyword('NULL'),
  property,
);

/** Conditions built from the grammar, a few levels deep. */
const { condition } = fc.letrec<{ condition: string }>((tie) => ({
  condition: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafCondition,
    join(keyword('NOT'), sep, text('('), tie('condition'), text(')')),
    join(text('('), tie('condition'), text(')')),
    join(tie('condition'), sep, keyword('AND'), sep, tie('condition')),
    join(tie('condition'), sep, keyword('OR'), sep, tie('condition')),
  ),
}));

/** A message: some of the properties, with numeric, boolean and arbitrary string values. */
const message = fc.record({
  tag: fc.option(fc.constantFrom('TagA', 'TagB', '5'), { nil: undefined }),
  properties: fc.dictionary(
    fc.constantFrom(...propertyNames),
    fc.oneof(
      fc.integer({ min: -50, max: 150 }).map(String),
      fc.constantFrom('true', 'FALSE', '1.5', 'x', ''),
      fc.string(),
    ),
  ),
});

/** The tree without source offsets, to compare trees parsed from different texts. */
function withoutOffsets(node: SqlNode): unknown {
  return JSON.parse(JSON.stringify(node, (key, value: unknown) => (key === 'at' ? undefined : value)));
}

// ---- properties ------------------------------------------------------------------------------

describe('SQL92 filter properties', () => {
  it('parses every expression generated from the grammar', () => {
    fc.assert(
      fc.property(condition, (expression) => {
        const tree = parseSqlExpression(expression);
        expect(typeof compileSqlCondition(tree)).toBe('function');
      }),
      { numRuns: 500 },
    );
  });

  it('prints a tree that reparses to the same tree, and printing is idempotent', () => {
    fc.assert(
      fc.property(condition, (expression) => {
        const tree = parseSqlExpression(expression);
        const printed = printSqlExpression(tree);
        const reparsed = parseSqlExpression(printed);
        expect(withoutOffsets(reparsed)).toEqual(withoutOffsets(tree));
        expect(printSqlExpression(reparsed)).toBe(printed);
      }),
      { numRuns: 500 },
    );
  });

  it('evaluates the printed form exactly like the original', () => {
    fc.assert(
      fc.property(condition, fc.array(message, { minLength: 1, maxLength: 5 }), (expression, messages) => {
        const original = compileSqlCondition(parseSqlExpression(expression));
        const printed = compileSqlCondition(
          parseSqlExpression(printSqlExpression(parseSqlExpression(expression))),
        );
        for (const { tag, properties } of messages) {
          expect(printed(tag, properties)).toBe(original(tag, properties));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('follows three-valued logic: NOT, De Morgan and excluded middle only when known', () => {
    const not = (v: SqlTruth): SqlTruth => (v === null ? null : !v);
    fc.assert(
      fc.property(condition, condition, message, (x, y, { tag, properties }) => {
        const run = (expression: string) =>
          compileSqlCondition(parseSqlExpression(expression))(tag, properties);
        const vx = run(x);
        const vy = run(y);
        expect(run(`NOT (${x})`)).toBe(not(vx));
        expect(run(`NOT ((${x}) AND (${y}))`)).toBe(run(`NOT (${x}) OR NOT (${y})`));
        expect(run(`(${x}) AND (${y})`)).toBe(
          vx === false || vy === false ? false : vx === null || vy === null ? null : true,
        );
        expect(run(`(${x}) OR (${y})`)).toBe(
          vx === true || vy === true ? true : vx === null || vy === null ? null : false,
        );
        expect(run(`(${x}) OR NOT (${x})`)).toBe(vx === null ? null : true);
      }),
      { numRuns: 300 },
    );
  });

  it('orders numeric properties like numbers', () => {
    const num = fc.oneof(
      fc.integer({ min: -1e6, max: 1e6 }),
      fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }),
    );
    fc.assert(
      fc.property(num, num, (x, y) => {
        const literal = y < 0 ? `-${String(-y)}` : String(y);
        const properties = { p: String(x) };
        const run = (expression: string) => compileFilter('SQL92', expression).matches(undefined, properties);
        expect(run(`p > ${literal}`)).toBe(x > y);
        expect(run(`p >= ${literal}`)).toBe(x >= y);
        expect(run(`p < ${literal}`)).toBe(x < y);
        expect(run(`p <= ${literal}`)).toBe(x <= y);
        expect(run(`p = ${literal}`)).toBe(x === y);
        expect(run(`p <> ${literal}`)).toBe(x !== y);
      }),
      { numRuns: 500 },
    );
  });

  it('defines BETWEEN as >= AND <=, and NOT BETWEEN as < OR >', () => {
    fc.assert(
      fc.property(message, fc.nat(100), fc.nat(100), (msg, x, y) => {
        const [low, high] = [Math.min(x, y), Math.max(x, y)];
        const run = (expression: string) =>
          compileSqlCondition(parseSqlExpression(expression))(msg.tag, msg.properties);
        expect(run(`price BETWEEN ${low} AND ${high}`)).toBe(run(`price >= ${low} AND price <= ${high}`));
        expect(run(`price NOT BETWEEN ${low} AND b`)).toBe(run(`price < ${low} OR price > b`));
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips any string literal through quoting and the lexer', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (value) => {
        const tokens = tokenizeSql(quoteSqlString(value));
        expect(tokens).toHaveLength(2);
        expect(tokens[0]).toMatchObject({ kind: 'string', value });
      }),
    );
  });

  const fragments = fc.constantFrom(
    'a',
    'TAGS',
    '1',
    '5.5',
    '.5',
    '0',
    "'x'",
    "'",
    "''",
    '(',
    ')',
    ',',
    'AND',
    'or',
    'NOT',
    'between',
    'IN',
    'IS',
    'NULL',
    'TRUE',
    'CONTAINS',
    'startswith',
    '=',
    '<>',
    '>',
    '<=',
    '-',
    '+',
    '/*',
    '*/',
    '--',
    '\n',
    '.',
    '#',
    '"',
    '!',
    'E',
    'L',
  );

  it('answers token soup with a tree or an INVALID_FILTER error, nothing else', () => {
    fc.assert(
      fc.property(
        fc.array(fragments, { maxLength: 25 }),
        fc.constantFrom(' ', ''),
        message,
        (parts, glue, msg) => {
          const expression = parts.join(glue);
          let tree: SqlNode;
          try {
            tree = parseSqlExpression(expression);
          } catch (error) {
            if (!isRocketError(error, 'INVALID_FILTER')) throw error;
            expect(error.message).toMatch(/^Invalid SQL92 filter: .+ at line \d+, column \d+ in /s);
            return;
          }
          const result = compileSqlCondition(tree)(msg.tag, msg.properties);
          expect([true, false, null]).toContain(result);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('answers arbitrary text with a filter or an INVALID_FILTER error, nothing else', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<'TAG' | 'SQL92'>('TAG', 'SQL92'),
        fc.string({ unit: 'binary', maxLength: 60 }),
        (type, expression) => {
          try {
            const filter = compileFilter(type, expression);
            expect(typeof filter.matches('x', { a: '1' })).toBe('boolean');
          } catch (error) {
            if (!isRocketError(error, 'INVALID_FILTER')) throw error;
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('tag filter properties', () => {
  const tag = fc
    .string({ minLength: 1, maxLength: 10 })
    .filter((t) => t.trim() === t && t !== '*' && !t.includes('|') && t !== '');

  it('matches exactly the listed tags, and the hash pre-check never drops a match', () => {
    fc.assert(
      fc.property(
        fc.array(tag, { minLength: 1, maxLength: 6 }),
        tag,
        fc.constantFrom(' || ', '||', '  ||\t'),
        (tags, probe, separator) => {
          const filter = compileFilter('TAG', tags.join(separator));
          for (const t of [...tags, probe]) {
            const expected = tags.includes(t);
            expect(filter.matches(t, {})).toBe(expected);
            if (expected) expect(filter.matchesTagHash(tagHash(t))).toBe(true);
          }
        },
      ),
    );
  });
});
