import { invalidFilter } from './filter-error';
import { MAX_FILTER_EXPRESSION_CHARS } from './filter-limits';

/**
 * Tokens of RocketMQ's SQL92 filter grammar (rmq `filter/.../parser/SelectorParser.jj`). The lexer
 * reproduces its token definitions:
 *
 * - whitespace is space, tab, `\n`, `\r` and form feed;
 * - `-- comment` runs to the end of the line and `/* comment *\/` to the first `*\/` (no nesting).
 *   `--` always starts a comment, so `- -5` needs the space. Unlike the JavaCC grammar, a line
 *   comment may also end at the end of the input instead of requiring a newline;
 * - keywords are matched case-insensitively against a whole identifier (`ANDY` is an identifier);
 * - identifiers are `[a-zA-Z_$][a-zA-Z0-9_$]*`, kept as written: property lookup is case-sensitive;
 * - `DECIMAL_LITERAL` is `0 | [1-9][0-9]*` with an optional `L`/`l`; `FLOATING_POINT_LITERAL` is
 *   `5.5`, `5.`, `.5`, `5E10`, `5.5e-3` (the exponent needs digits, so `5e` is `5` then `e`);
 * - string literals use single quotes, with `''` standing for one quote.
 *
 * Where JavaCC would split `012` into two numbers and fail in the parser, this lexer reports the
 * leading zero directly; the outcome (an `INVALID_FILTER` error) is the same.
 */

/** RocketMQ's reserved words; none of them can name a property. */
export const SQL_KEYWORDS = [
  'NOT',
  'AND',
  'OR',
  'BETWEEN',
  'IN',
  'TRUE',
  'FALSE',
  'NULL',
  'IS',
  'CONTAINS',
  'STARTSWITH',
  'ENDSWITH',
] as const;

export type SqlKeyword = (typeof SQL_KEYWORDS)[number];

/** Operators and punctuation of the grammar. */
export type SqlSymbol = '(' | ')' | ',' | '=' | '<>' | '>' | '>=' | '<' | '<=' | '+' | '-';

export type SqlTokenKind = 'identifier' | 'keyword' | 'string' | 'decimal' | 'float' | 'symbol' | 'end';

export interface SqlToken {
  readonly kind: SqlTokenKind;
  /**
   * The token's meaning: the upper-case keyword, the decoded string (quotes removed, `''` → `'`),
   * the identifier or number as written, the symbol; `''` for `end`.
   */
  readonly value: string;
  /** The token exactly as written in the expression (`''` for `end`). */
  readonly text: string;
  /** 0-based index of the token's first character; `expression.length` for `end`. */
  readonly offset: number;
}

const KEYWORDS: ReadonlySet<string> = new Set(SQL_KEYWORDS);

const TAB = 0x09;
const LF = 0x0a;
const FF = 0x0c;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x27; // '
const STAR = 0x2a;
const MINUS = 0x2d;
const DOT = 0x2e;
const SLASH = 0x2f;

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isIdentifierStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f /* _ */ || c === 0x24; /* $ */
}

function isIdentifierPart(c: number): boolean {
  return isIdentifierStart(c) || isDigit(c);
}

/**
 * Splits a SQL92 filter into tokens, ending with one `end` token. Throws `INVALID_FILTER` (with
 * line and column) on a character the grammar does not know, an unterminated string or block
 * comment, a number with a leading zero, or an expression longer than `MAX_FILTER_EXPRESSION_CHARS`.
 */
export function tokenizeSql(expression: string): SqlToken[] {
  if (expression.length > MAX_FILTER_EXPRESSION_CHARS) {
    throw invalidFilter(
      'SQL92 filter',
      expression,
      MAX_FILTER_EXPRESSION_CHARS,
      `longer than ${MAX_FILTER_EXPRESSION_CHARS} characters (MAX_FILTER_EXPRESSION_CHARS)`,
    );
  }
  const tokens: SqlToken[] = [];
  const n = expression.length;
  const fail = (offset: number, detail: string): never => {
    throw invalidFilter('SQL92 filter', expression, offset, detail);
  };
  const push = (kind: SqlTokenKind, start: number, end: number, value?: string): void => {
    const text = expression.slice(start, end);
    tokens.push({ kind, value: value ?? text, text, offset: start });
  };

  let i = 0;
  while (i < n) {
    const c = expression.charCodeAt(i);
    const next = i + 1 < n ? expression.charCodeAt(i + 1) : -1;

    if (c === SPACE || c === TAB || c === LF || c === CR || c === FF) {
      i++;
    } else if (c === MINUS && next === MINUS) {
      i += 2;
      while (i < n && expression.charCodeAt(i) !== LF && expression.charCodeAt(i) !== CR) i++;
    } else if (c === SLASH && next === STAR) {
      const close = expression.indexOf('*/', i + 2);
      if (close < 0) fail(i, "unterminated block comment (close it with '*/')");
      i = close + 2;
    } else if (c === QUOTE) {
      i = scanString(expression, i, push, fail);
    } else if (isDigit(c) || (c === DOT && isDigit(next))) {
      i = scanNumber(expression, i, push, fail);
    } else if (isIdentifierStart(c)) {
      const start = i;
      while (i < n && isIdentifierPart(expression.charCodeAt(i))) i++;
      const word = expression.slice(start, i);
      const upper = word.toUpperCase();
      if (KEYWORDS.has(upper)) push('keyword', start, i, upper);
      else push('identifier', start, i);
    } else {
      i = scanSymbol(expression, i, push, fail);
    }
  }
  tokens.push({ kind: 'end', value: '', text: '', offset: n });
  return tokens;
}

type Push = (kind: SqlTokenKind, start: number, end: number, value?: string) => void;
type Fail = (offset: number, detail: string) => never;

/** Scans `'…'` starting at the opening quote; returns the index after the closing quote. */
function scanString(expression: string, start: number, push: Push, fail: Fail): number {
  let value = '';
  let chunkStart = start + 1;
  let i = start + 1;
  for (;;) {
    const close = expression.indexOf("'", i);
    if (close < 0) return fail(start, "unterminated string literal (close it with ')");
    if (expression.charCodeAt(close + 1) === QUOTE) {
      // `''` is an escaped quote: keep one of them.
      value += expression.slice(chunkStart, close + 1);
      i = close + 2;
      chunkStart = i;
    } else {
      value += expression.slice(chunkStart, close);
      push('string', start, close + 1, value);
      return close + 1;
    }
  }
}

/** Scans a decimal or floating-point literal; returns the index after it. */
function scanNumber(expression: string, start: number, push: Push, fail: Fail): number {
  const n = expression.length;
  let i = start;
  while (i < n && isDigit(expression.charCodeAt(i))) i++;
  const integerDigits = i - start;
  let isFloat = false;
  if (i < n && expression.charCodeAt(i) === DOT) {
    isFloat = true;
    i++;
    while (i < n && isDigit(expression.charCodeAt(i))) i++;
  }
  const afterExponent = scanExponent(expression, i);
  if (afterExponent > i) {
    isFloat = true;
    i = afterExponent;
  }
  if (isFloat) {
    push('float', start, i);
    return i;
  }
  if (integerDigits > 1 && expression.charCodeAt(start) === 0x30) {
    fail(
      start,
      `a number may not start with 0 ("${expression.slice(start, i)}"); write it without leading zeros`,
    );
  }
  const digitsEnd = i;
  const suffix = i < n ? expression.charCodeAt(i) : -1;
  if (suffix === 0x4c /* L */ || suffix === 0x6c /* l */) i++;
  // The value of a decimal literal is its digits; the `L` suffix only mattered to Java's typing.
  push('decimal', start, i, expression.slice(start, digitsEnd));
  return i;
}

/** Index after an exponent (`E`, optional sign, at least one digit) at `i`, or `i` when there is none. */
function scanExponent(expression: string, i: number): number {
  const c = expression.charCodeAt(i);
  if (c !== 0x45 /* E */ && c !== 0x65 /* e */) return i;
  let j = i + 1;
  const sign = expression.charCodeAt(j);
  if (sign === 0x2b /* + */ || sign === MINUS) j++;
  if (!isDigit(expression.charCodeAt(j))) return i;
  while (isDigit(expression.charCodeAt(j))) j++;
  return j;
}

/** Scans an operator or punctuation mark; returns the index after it. */
function scanSymbol(expression: string, i: number, push: Push, fail: Fail): number {
  const c = expression[i]!;
  const next = expression[i + 1];
  switch (c) {
    case '(':
    case ')':
    case ',':
    case '=':
    case '+':
    case '-':
      push('symbol', i, i + 1);
      return i + 1;
    case '<':
      if (next === '>' || next === '=') {
        push('symbol', i, i + 2);
        return i + 2;
      }
      push('symbol', i, i + 1);
      return i + 1;
    case '>':
      if (next === '=') {
        push('symbol', i, i + 2);
        return i + 2;
      }
      push('symbol', i, i + 1);
      return i + 1;
    case '!':
      return fail(
        i,
        next === '=' ? "unknown operator '!='; use '<>' for not-equal" : "unexpected character '!'; use NOT",
      );
    case '"':
      return fail(i, "unexpected character '\"'; string literals use single quotes ('text')");
    default:
      return fail(i, `unexpected character ${describeCharacter(expression, i)}`);
  }
}

/** `'#'` for printable ASCII, `U+00A0` for everything else (invisible or confusable characters). */
function describeCharacter(expression: string, i: number): string {
  const codePoint = expression.codePointAt(i)!;
  if (codePoint > 0x20 && codePoint < 0x7f) return `'${String.fromCharCode(codePoint)}'`;
  return `U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}`;
}
