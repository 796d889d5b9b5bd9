import { isRocketError, type RocketError } from '../../src/common/errors';
import { MAX_FILTER_EXPRESSION_CHARS } from '../../src/filter/filter-limits';
import { SQL_KEYWORDS, tokenizeSql, type SqlToken } from '../../src/filter/sql-lexer';

/** `kind:value` for each token, without the final `end`. */
function lex(expression: string): string[] {
  const tokens = tokenizeSql(expression);
  expect(tokens[tokens.length - 1]).toEqual({ kind: 'end', value: '', text: '', offset: expression.length });
  return tokens.slice(0, -1).map((t: SqlToken) => `${t.kind}:${t.value}`);
}

function lexError(expression: string): RocketError {
  try {
    tokenizeSql(expression);
  } catch (error) {
    if (isRocketError(error, 'INVALID_FILTER')) return error;
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(expression)} to be rejected`);
}

describe('tokenizeSql', () => {
  it('tokenizes operators and punctuation, longest first', () => {
    expect(lex('( ) , = <> > >= < <= + -')).toEqual([
      'symbol:(',
      'symbol:)',
      'symbol:,',
      'symbol:=',
      'symbol:<>',
      'symbol:>',
      'symbol:>=',
      'symbol:<',
      'symbol:<=',
      'symbol:+',
      'symbol:-',
    ]);
    expect(lex('a<>b<=c>=d<e>f')).toEqual([
      'identifier:a',
      'symbol:<>',
      'identifier:b',
      'symbol:<=',
      'identifier:c',
      'symbol:>=',
      'identifier:d',
      'symbol:<',
      'identifier:e',
      'symbol:>',
      'identifier:f',
    ]);
  });

  it('records offsets and raw text', () => {
    expect(tokenizeSql("a = 'it''s'")).toEqual([
      { kind: 'identifier', value: 'a', text: 'a', offset: 0 },
      { kind: 'symbol', value: '=', text: '=', offset: 2 },
      { kind: 'string', value: "it's", text: "'it''s'", offset: 4 },
      { kind: 'end', value: '', text: '', offset: 11 },
    ]);
  });

  it('matches keywords case-insensitively and only as whole words', () => {
    for (const keyword of SQL_KEYWORDS) {
      expect(lex(keyword.toLowerCase())).toEqual([`keyword:${keyword}`]);
      expect(lex(keyword[0] + keyword.slice(1).toLowerCase())).toEqual([`keyword:${keyword}`]);
    }
    expect(lex('ANDY Nothing isx in_ IN')).toEqual([
      'identifier:ANDY',
      'identifier:Nothing',
      'identifier:isx',
      'identifier:in_',
      'keyword:IN',
    ]);
  });

  it('keeps identifier case and accepts _ and $', () => {
    expect(lex('Region _x $y a1_$ TAGS')).toEqual([
      'identifier:Region',
      'identifier:_x',
      'identifier:$y',
      'identifier:a1_$',
      'identifier:TAGS',
    ]);
  });

  it('reads decimal literals with an optional L suffix', () => {
    expect(lex('0 7 123 10L 10l 0L')).toEqual([
      'decimal:0',
      'decimal:7',
      'decimal:123',
      'decimal:10',
      'decimal:10',
      'decimal:0',
    ]);
    expect(tokenizeSql('10L')[0]).toMatchObject({ text: '10L', value: '10' });
  });

  it('reads every floating-point form of the grammar', () => {
    expect(lex('5.5 5. .5 5E10 5e-3 5.E+2 .5e1 00.5 0e0')).toEqual([
      'float:5.5',
      'float:5.',
      'float:.5',
      'float:5E10',
      'float:5e-3',
      'float:5.E+2',
      'float:.5e1',
      'float:00.5',
      'float:0e0',
    ]);
  });

  it('does not take an exponent without digits', () => {
    expect(lex('5e')).toEqual(['decimal:5', 'identifier:e']);
    expect(lex('5E+')).toEqual(['decimal:5', 'identifier:E', 'symbol:+']);
  });

  it('decodes strings with doubled quotes and keeps everything else verbatim', () => {
    expect(lex(`'' 'a' '''' 'x''y''z' 'a -- b /* c */' 'ünï"\\n'`)).toEqual([
      'string:',
      'string:a',
      "string:'",
      "string:x'y'z",
      'string:a -- b /* c */',
      'string:ünï"\\n',
    ]);
  });

  it('skips whitespace and comments', () => {
    expect(lex(' \t\r\n\f a -- line comment\n= /* block\n comment */ 1 -- to the end')).toEqual([
      'identifier:a',
      'symbol:=',
      'decimal:1',
    ]);
    expect(lex('a/**/=/***/1/* ** / */')).toEqual(['identifier:a', 'symbol:=', 'decimal:1']);
    expect(lex('a --\r= 1')).toEqual(['identifier:a', 'symbol:=', 'decimal:1']);
  });

  it('treats -- as a comment even after a minus', () => {
    expect(lex('- -5')).toEqual(['symbol:-', 'symbol:-', 'decimal:5']);
    expect(lex('a = --5')).toEqual(['identifier:a', 'symbol:=']);
  });

  it.each([
    ["a = 'abc", 'unterminated string literal', 'line 1, column 5'],
    ["a = 'it''", 'unterminated string literal', 'line 1, column 5'],
    ['a = 1 /* open', 'unterminated block comment', 'line 1, column 7'],
    ['a /*/ = 1', 'unterminated block comment', 'line 1, column 3'],
    ['a # 1', "unexpected character '#'", 'line 1, column 3'],
    ['a != 1', "unknown operator '!='; use '<>'", 'line 1, column 3'],
    ['!a', "unexpected character '!'; use NOT", 'line 1, column 1'],
    ['a = "x"', 'string literals use single quotes', 'line 1, column 5'],
    ['a = 012', 'a number may not start with 0 ("012")', 'line 1, column 5'],
    ['a.b = 1', "unexpected character '.'", 'line 1, column 2'],
    ['a\u00a0= 1', 'unexpected character U+00A0', 'line 1, column 2'],
    ['a = 1\n  AND b\u0007', 'unexpected character U+0007', 'line 2, column 8'],
    ['a = 1\r\n\r\n  @', "unexpected character '@'", 'line 3, column 3'],
    ['a = 1\r\rb @', "unexpected character '@'", 'line 3, column 3'],
    ['a = ☃', 'unexpected character U+2603', 'line 1, column 5'],
    ['a = 😀', 'unexpected character U+1F600', 'line 1, column 5'],
  ])('rejects %j', (expression, detail, position) => {
    const error = lexError(expression);
    expect(error.message).toContain(detail);
    expect(error.message).toContain(` at ${position} in `);
    expect(error.message).toContain(JSON.stringify(expression));
    expect(error.message.startsWith('Invalid SQL92 filter: ')).toBe(true);
  });

  it('enforces MAX_FILTER_EXPRESSION_CHARS before scanning', () => {
    const atLimit = `a = '${'x'.repeat(MAX_FILTER_EXPRESSION_CHARS - 6)}'`;
    expect(atLimit).toHaveLength(MAX_FILTER_EXPRESSION_CHARS);
    expect(lex(atLimit)).toHaveLength(3);
    const error = lexError(`${atLimit} `);
    expect(error.message).toContain(`longer than ${MAX_FILTER_EXPRESSION_CHARS} characters`);
  });
});
