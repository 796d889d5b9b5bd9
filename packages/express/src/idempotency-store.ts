import { systemClock } from '@rocketnest/core-broker';
import type { Clock } from '@rocketnest/core-broker';
import { intOption } from '@rocketnest/core-broker/internal';

/** Keys remembered by the in-memory store. */
export const DEFAULT_IDEMPOTENCY_MAX_KEYS = 10_000;
/** How long a completed response is replayed, in ms (24 h). */
export const DEFAULT_IDEMPOTENCY_TTL_MS = 24 * 60 * 60_000;
/** Longest `Idempotency-Key`, in characters. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** A response kept for replay. */
export interface StoredResponse {
  status: number;
  body: string;
  contentType: string;
  headers: Record<string, string>;
}

/** What the store says about a key when a request with it begins. */
export type IdempotencyBegin =
  | { state: 'new' }
  | { state: 'replay'; response: StoredResponse }
  | { state: 'mismatch' }
  | { state: 'in-flight' }
  | { state: 'full' };

/**
 * Where `Idempotency-Key`s and their first responses live. `begin` claims a key for a request
 * fingerprint; `complete` stores its response; `abandon` forgets it (the request failed in a way
 * a retry may fix). Implement it over Redis or a database to share keys between instances.
 */
export interface IdempotencyStore {
  begin(key: string, fingerprint: string): IdempotencyBegin | Promise<IdempotencyBegin>;
  complete(key: string, response: StoredResponse): void | Promise<void>;
  abandon(key: string): void | Promise<void>;
}

export interface MemoryIdempotencyStoreOptions {
  /** Keys kept (in flight and completed); the oldest completed ones are dropped first. Default 10 000. */
  maxKeys?: number;
  /** How long a completed response is replayed, in ms. Default 24 h. */
  ttlMs?: number;
  /** Default: the system clock. */
  clock?: Clock;
}

interface Entry {
  fingerprint: string;
  response: StoredResponse | undefined;
  expiresAtMs: number;
}

/**
 * A bounded in-process store: at most `maxKeys` keys, completed ones replayed for `ttlMs`. When
 * full, the oldest completed key is dropped; when every key is in flight, `begin` answers `full`
 * (the router then answers 503 with Retry-After). Keys are per process: behind a load balancer,
 * use a shared store.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly entries = new Map<string, Entry>();
  private readonly maxKeys: number;
  private readonly ttlMs: number;
  private readonly clock: Clock;

  constructor(options: MemoryIdempotencyStoreOptions = {}) {
    this.maxKeys = intOption(
      'idempotency store',
      'maxKeys',
      options.maxKeys,
      DEFAULT_IDEMPOTENCY_MAX_KEYS,
      1,
    );
    this.ttlMs = intOption('idempotency store', 'ttlMs', options.ttlMs, DEFAULT_IDEMPOTENCY_TTL_MS, 1);
    this.clock = options.clock ?? systemClock;
  }

  /** Keys held now (in flight and completed). */
  get size(): number {
    return this.entries.size;
  }

  begin(key: string, fingerprint: string): IdempotencyBegin {
    const now = this.clock.now();
    const entry = this.entries.get(key);
    if (entry && entry.response && entry.expiresAtMs <= now) this.entries.delete(key);
    else if (entry) {
      if (entry.fingerprint !== fingerprint) return { state: 'mismatch' };
      return entry.response ? { state: 'replay', response: entry.response } : { state: 'in-flight' };
    }
    if (this.entries.size >= this.maxKeys && !this.evictOne(now)) return { state: 'full' };
    this.entries.set(key, { fingerprint, response: undefined, expiresAtMs: Number.POSITIVE_INFINITY });
    return { state: 'new' };
  }

  complete(key: string, response: StoredResponse): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    entry.response = response;
    entry.expiresAtMs = this.clock.now() + this.ttlMs;
    // Re-insert so iteration order is completion order (oldest first for eviction).
    this.entries.delete(key);
    this.entries.set(key, entry);
  }

  abandon(key: string): void {
    const entry = this.entries.get(key);
    if (entry && !entry.response) this.entries.delete(key);
  }

  /** Drops an expired key, else the oldest completed one; false when every key is in flight. */
  private evictOne(now: number): boolean {
    let oldestCompleted: string | undefined;
    for (const [key, entry] of this.entries) {
      if (!entry.response) continue;
      if (entry.expiresAtMs <= now) {
        this.entries.delete(key);
        return true;
      }
      oldestCompleted ??= key;
    }
    if (oldestCompleted === undefined) return false;
    this.entries.delete(oldestCompleted);
    return true;
  }
}
