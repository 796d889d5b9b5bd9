import { RocketError } from '../common/errors';

/** Which grammar an error is about; it prefixes the message so the user knows which field to fix. */
export type FilterGrammar = 'tag expression' | 'SQL92 filter';

/** Expressions longer than this are quoted as a window around the error instead of in full. */
const MAX_QUOTED_CHARS = 160;
/** Characters kept either side of the error position when the expression is windowed. */
const QUOTE_WINDOW_CHARS = 60;

/**
 * Builds the `INVALID_FILTER` error for a filter that cannot be compiled. The message names the
 * 1-based line and column of `offset` (a 0-based index into `expression`; `expression.length` means
 * "end of input") and quotes the expression, so the user can find the mistake without a debugger:
 * `Invalid SQL92 filter: expected ')' but found end of input at line 1, column 17 in "a = 1 AND (b > 2"`.
 */
export function invalidFilter(
  grammar: FilterGrammar,
  expression: string,
  offset: number,
  detail: string,
): RocketError {
  const { line, column } = lineAndColumn(expression, offset);
  return new RocketError(
    'INVALID_FILTER',
    `Invalid ${grammar}: ${detail} at line ${line}, column ${column} in ${quote(expression, offset)}`,
  );
}

/** 1-based line and column of a 0-based offset; `\n`, `\r\n` and `\r` all end a line. */
function lineAndColumn(expression: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, expression.length);
  for (let i = 0; i < end; i++) {
    const c = expression.charCodeAt(i);
    if (c === 0x0a || (c === 0x0d && expression.charCodeAt(i + 1) !== 0x0a)) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/** The expression as a JSON string literal (so newlines stay visible), windowed when long. */
function quote(expression: string, offset: number): string {
  if (expression.length <= MAX_QUOTED_CHARS) return JSON.stringify(expression);
  const start = Math.max(0, offset - QUOTE_WINDOW_CHARS);
  const end = Math.min(expression.length, offset + QUOTE_WINDOW_CHARS);
  const prefix = start > 0 ? '…' : '';
  const suffix = end < expression.length ? '…' : '';
  return `${prefix}${JSON.stringify(expression.slice(start, end))}${suffix} (${expression.length} chars)`;
}
