const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** Hash of "no tag"; a real tag never hashes to it. */
export const NO_TAG_HASH = 0;

/**
 * The tag hash kept in every consume-queue entry, so a consumer's tag expression can skip
 * entries without reading the commit log (RocketMQ stores `tagsCode` the same way). 32-bit FNV-1a
 * over the UTF-8 bytes; equal hashes still need an exact tag comparison.
 */
export function tagHash(tag: string | undefined): number {
  if (tag === undefined || tag.length === 0) return NO_TAG_HASH;
  let hash = FNV_OFFSET_BASIS;
  for (let i = 0; i < tag.length; i++) {
    const code = tag.charCodeAt(i);
    // an ASCII character is its own UTF-8 byte; anything else takes the general path
    if (code >= 0x80) return hashUtf8(tag);
    hash ^= code;
    hash = Math.imul(hash, FNV_PRIME);
  }
  hash >>>= 0;
  return hash === NO_TAG_HASH ? 1 : hash;
}

function hashUtf8(tag: string): number {
  let hash = FNV_OFFSET_BASIS;
  const bytes = Buffer.from(tag, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    hash ^= bytes[i]!;
    hash = Math.imul(hash, FNV_PRIME);
  }
  hash >>>= 0;
  return hash === NO_TAG_HASH ? 1 : hash;
}
