import type { ConsumeProgress } from '../message/protocol';
import type { Transport } from './transport';

type ProgressSource = () => ConsumeProgress[];

/** Push consumers running on each transport, by the transport object they were given. */
const sources = new WeakMap<Transport, Set<ProgressSource>>();

/**
 * Test tooling's view of the push consumers in this process: no broker and no transport is
 * involved (it is not part of `ClientChannel`, which is what a broker may call on a client). A
 * push consumer adds itself for the transport it was given while it runs; `@rocketnest/testing`'s
 * `drain()` reads {@link consumeProgressOf} its own transport to tell when every message was consumed.
 * Returns the removal.
 */
export function trackConsumeProgress(transport: Transport, source: ProgressSource): () => void {
  let set = sources.get(transport);
  if (!set) sources.set(transport, (set = new Set()));
  set.add(source);
  return () => void set.delete(source);
}

/** Where every running push consumer on `transport` stands, queue by queue. */
export function consumeProgressOf(transport: Transport): ConsumeProgress[] {
  const out: ConsumeProgress[] = [];
  for (const source of sources.get(transport) ?? []) out.push(...source());
  return out;
}
