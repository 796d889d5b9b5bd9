/**
 * The last value of one repeating string field and its UTF-8 bytes. Topic and hosts repeat message
 * after message, so decoding compares bytes and hands back the same string, and encoding copies
 * the bytes instead of encoding again. Each reader and writer keeps its own memo; `bytes` is always
 * a copy, never a view, so it does not keep a frame or a store read alive.
 */
export class StringMemo {
  value = '';
  bytes: Buffer | undefined = undefined;
}

/** `buf[at, at + length)` as UTF-8: the memo's string when the bytes equal the memo's. */
export function memoUtf8(buf: Buffer, at: number, length: number, memo: StringMemo): string {
  const last = memo.bytes;
  if (last !== undefined && last.length === length) {
    let i = 0;
    while (i < length && last[i] === buf[at + i]) i++;
    if (i === length) return memo.value;
  }
  memo.value = buf.toString('utf8', at, at + length);
  memo.bytes = Buffer.from(buf.subarray(at, at + length));
  return memo.value;
}
