import { isRocketError, type RocketError } from '../../src/common/errors';
import { tagHash } from '../../src/message/tag-hash';
import { MAX_FILTER_EXPRESSION_CHARS } from '../../src/filter/filter-limits';
import { compileTagExpression, SUBSCRIBE_ALL_EXPRESSION } from '../../src/filter/tag-expression';

function compileError(expression: string): RocketError {
  try {
    compileTagExpression(expression);
  } catch (error) {
    if (isRocketError(error)) return error;
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(expression)} to be rejected`);
}

describe('compileTagExpression', () => {
  it.each(['*', '', '   ', ' * ', '\t*\n'])('treats %j as subscribe-all', (expression) => {
    const compiled = compileTagExpression(expression);
    expect(compiled.matchAll).toBe(true);
    expect(compiled.tags.size).toBe(0);
    expect(compiled.tagHashes.size).toBe(0);
  });

  it('exports RocketMQ SUB_ALL', () => {
    expect(SUBSCRIBE_ALL_EXPRESSION).toBe('*');
  });

  it('accepts a single tag', () => {
    const compiled = compileTagExpression('TagA');
    expect(compiled.matchAll).toBe(false);
    expect([...compiled.tags]).toEqual(['TagA']);
    expect([...compiled.tagHashes]).toEqual([tagHash('TagA')]);
  });

  it('splits on ||, trims each tag and keeps their hashes', () => {
    const compiled = compileTagExpression('  TagA ||TagB||  Tag C  ');
    expect([...compiled.tags]).toEqual(['TagA', 'TagB', 'Tag C']);
    expect([...compiled.tagHashes]).toEqual([tagHash('TagA'), tagHash('TagB'), tagHash('Tag C')]);
  });

  it('ignores empty items and de-duplicates', () => {
    const compiled = compileTagExpression('|| a || || a ||b||');
    expect([...compiled.tags]).toEqual(['a', 'b']);
    expect(compiled.tagHashes.size).toBe(2);
  });

  it('is case-sensitive', () => {
    const compiled = compileTagExpression('a || A');
    expect([...compiled.tags]).toEqual(['a', 'A']);
  });

  it.each(['||', '  ||  ', '|| || ||', '||||'])('rejects %j, which is only separators', (expression) => {
    const error = compileError(expression);
    expect(error.code).toBe('INVALID_FILTER');
    expect(error.retriable).toBe(false);
    expect(error.message).toContain('expected at least one tag');
    expect(error.message).toContain('line 1, column 1');
  });

  it('rejects a single | with its position', () => {
    const error = compileError('a | b');
    expect(error.code).toBe('INVALID_FILTER');
    expect(error.message).toBe(
      `Invalid tag expression: a single '|' inside tag "a | b"; separate tags with '||' at line 1, column 3 in "a | b"`,
    );
    expect(compileError('a ||| b').message).toContain('column 5');
  });

  it('rejects * mixed with tags', () => {
    const error = compileError('a || *');
    expect(error.code).toBe('INVALID_FILTER');
    expect(error.message).toContain("'*' must be the whole expression");
    expect(error.message).toContain('column 6');
  });

  it('enforces MAX_FILTER_EXPRESSION_CHARS', () => {
    const longest = 'a'.repeat(MAX_FILTER_EXPRESSION_CHARS);
    expect([...compileTagExpression(longest).tags]).toEqual([longest]);
    const error = compileError('a'.repeat(MAX_FILTER_EXPRESSION_CHARS + 1));
    expect(error.code).toBe('INVALID_FILTER');
    expect(error.message).toContain('MAX_FILTER_EXPRESSION_CHARS');
    // A long expression is quoted as a window, not in full.
    expect(error.message.length).toBeLessThan(400);
  });

  it('rejects a non-string with INVALID_ARGUMENT', () => {
    expect(() => compileTagExpression(42 as unknown as string)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it('returns a frozen result', () => {
    expect(Object.isFrozen(compileTagExpression('a || b'))).toBe(true);
    expect(Object.isFrozen(compileTagExpression('*'))).toBe(true);
  });
});
