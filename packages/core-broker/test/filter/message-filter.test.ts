import { isRocketError } from '../../src/common/errors';
import { NO_TAG_HASH, tagHash } from '../../src/message/tag-hash';
import { compileFilter, FILTER_TYPES, MATCH_ALL, type FilterType } from '../../src/filter/message-filter';

describe('compileFilter(TAG)', () => {
  it('matches tags exactly and pre-filters by hash', () => {
    const filter = compileFilter('TAG', 'TagA || TagB');
    expect(filter.type).toBe('TAG');
    expect(filter.expression).toBe('TagA || TagB');
    expect(filter.matches('TagA', {})).toBe(true);
    expect(filter.matches('TagB', { any: 'thing' })).toBe(true);
    expect(filter.matches('TagC', {})).toBe(false);
    expect(filter.matches('taga', {})).toBe(false);
    expect(filter.matches(undefined, {})).toBe(false);
    expect(filter.matches('', {})).toBe(false);
    expect(filter.matchesTagHash(tagHash('TagA'))).toBe(true);
    expect(filter.matchesTagHash(tagHash('TagB'))).toBe(true);
    expect(filter.matchesTagHash(tagHash('TagC'))).toBe(false);
    expect(filter.matchesTagHash(NO_TAG_HASH)).toBe(false);
  });

  it.each(['*', '', '  '])('%j matches every message, tagged or not', (expression) => {
    const filter = compileFilter('TAG', expression);
    expect(filter.type).toBe('TAG');
    expect(filter.expression).toBe(expression);
    expect(filter.matches('anything', {})).toBe(true);
    expect(filter.matches(undefined, {})).toBe(true);
    expect(filter.matchesTagHash(NO_TAG_HASH)).toBe(true);
    expect(filter.matchesTagHash(12345)).toBe(true);
  });

  it('rejects a bad tag expression with INVALID_FILTER', () => {
    expect(() => compileFilter('TAG', '||')).toThrow(expect.objectContaining({ code: 'INVALID_FILTER' }));
  });
});

describe('compileFilter(SQL92)', () => {
  it('delivers only when the expression is TRUE', () => {
    const filter = compileFilter('SQL92', "region = 'eu' AND price > 100");
    expect(filter.type).toBe('SQL92');
    expect(filter.expression).toBe("region = 'eu' AND price > 100");
    expect(filter.matches(undefined, { region: 'eu', price: '101' })).toBe(true);
    expect(filter.matches(undefined, { region: 'eu', price: '100' })).toBe(false);
    expect(filter.matches(undefined, { region: 'eu', price: 'cheap' })).toBe(false);
    // NULL (missing price) is not TRUE: not delivered.
    expect(filter.matches(undefined, { region: 'eu' })).toBe(false);
  });

  it('never delivers on a missing property unless IS NULL or an OR branch makes it TRUE', () => {
    const props = { other: '1' };
    for (const expression of [
      'missing = 1',
      'missing <> 1',
      'NOT (missing = 1)',
      "missing NOT IN ('x')",
      "NOT (missing CONTAINS 'x')",
      'missing NOT BETWEEN 1 AND 2',
    ]) {
      expect(compileFilter('SQL92', expression).matches(undefined, props)).toBe(false);
    }
    expect(compileFilter('SQL92', 'missing IS NULL').matches(undefined, props)).toBe(true);
    expect(compileFilter('SQL92', 'missing = 1 OR other = 1').matches(undefined, props)).toBe(true);
  });

  it('sees the tag as TAGS', () => {
    const filter = compileFilter('SQL92', "TAGS IN ('a', 'b') AND n >= 3");
    expect(filter.matches('a', { n: '3' })).toBe(true);
    expect(filter.matches('c', { n: '3' })).toBe(false);
    expect(filter.matches(undefined, { n: '3' })).toBe(false);
  });

  it('never rejects on the tag hash', () => {
    const filter = compileFilter('SQL92', "TAGS = 'a'");
    expect(filter.matchesTagHash(tagHash('b'))).toBe(true);
    expect(filter.matchesTagHash(NO_TAG_HASH)).toBe(true);
  });

  it('rejects a bad expression with INVALID_FILTER and the position', () => {
    let caught: unknown;
    try {
      compileFilter('SQL92', 'a = 1 AND (b > 2');
    } catch (error) {
      caught = error;
    }
    expect(isRocketError(caught, 'INVALID_FILTER')).toBe(true);
    expect((caught as Error).message).toBe(
      `Invalid SQL92 filter: expected ')' but found end of input at line 1, column 17 in "a = 1 AND (b > 2"`,
    );
  });

  it('treats an empty SQL92 filter as an error, unlike an empty tag expression', () => {
    expect(() => compileFilter('SQL92', '')).toThrow(expect.objectContaining({ code: 'INVALID_FILTER' }));
  });
});

describe('compileFilter: arguments', () => {
  it('rejects an unknown type with INVALID_ARGUMENT', () => {
    expect(() => compileFilter('SQL' as FilterType, 'a = 1')).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('TAG, SQL92') }),
    );
  });

  it('rejects a non-string expression with INVALID_ARGUMENT', () => {
    expect(() => compileFilter('TAG', null as unknown as string)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => compileFilter('SQL92', 5 as unknown as string)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it('lists the filter types', () => {
    expect(FILTER_TYPES).toEqual(['TAG', 'SQL92']);
  });

  it('returns frozen filters', () => {
    expect(Object.isFrozen(compileFilter('TAG', 'a'))).toBe(true);
    expect(Object.isFrozen(compileFilter('TAG', '*'))).toBe(true);
    expect(Object.isFrozen(compileFilter('SQL92', 'a = 1'))).toBe(true);
  });
});

describe('MATCH_ALL', () => {
  it('is the frozen tag filter *', () => {
    expect(MATCH_ALL.type).toBe('TAG');
    expect(MATCH_ALL.expression).toBe('*');
    expect(MATCH_ALL.matches(undefined, {})).toBe(true);
    expect(MATCH_ALL.matches('x', {})).toBe(true);
    expect(MATCH_ALL.matchesTagHash(NO_TAG_HASH)).toBe(true);
    expect(Object.isFrozen(MATCH_ALL)).toBe(true);
  });
});
