import { RocketError } from '@rocketnest/core-broker';

/** What a record sets on the message besides its payload. */
export interface RocketRecordOptions {
  /** The message's tag, which consumers filter on. */
  tag?: string;
  /** Business keys (order ids…), indexed for query by key. */
  keys?: readonly string[];
  /** User properties, visible to SQL92 filters. */
  properties?: Readonly<Record<string, string>>;
  /** FIFO message group (RocketMQ sharding key): messages of one group keep their order. */
  messageGroup?: string;
  /** Deliver this many ms after the send. Exclusive with `deliveryTimeMs`. */
  delayMs?: number;
  /** Deliver at this epoch ms. */
  deliveryTimeMs?: number;
}

/** A payload with message options, for `RocketClient.emit()`/`send()` (as Nest's `RmqRecord`). */
export class RocketRecord<TData = unknown> {
  constructor(
    readonly data: TData,
    readonly options: RocketRecordOptions = {},
  ) {}
}

/** Builds a {@link RocketRecord}: `new RocketRecordBuilder(data).setTag('created').setKeys(['42']).build()`. */
export class RocketRecordBuilder<TData = unknown> {
  private options: RocketRecordOptions = {};

  constructor(private data?: TData) {}

  setData(data: TData): this {
    this.data = data;
    return this;
  }
  setTag(tag: string): this {
    this.options = { ...this.options, tag };
    return this;
  }
  setKeys(keys: readonly string[]): this {
    this.options = { ...this.options, keys: [...keys] };
    return this;
  }
  setProperties(properties: Readonly<Record<string, string>>): this {
    this.options = { ...this.options, properties: { ...properties } };
    return this;
  }
  setMessageGroup(messageGroup: string): this {
    this.options = { ...this.options, messageGroup };
    return this;
  }
  setDelayMs(delayMs: number): this {
    this.options = { ...this.options, delayMs };
    return this;
  }
  /** Delivery time as epoch ms or a `Date`. */
  setDeliveryTime(time: number | Date): this {
    this.options = { ...this.options, deliveryTimeMs: time instanceof Date ? time.getTime() : time };
    return this;
  }
  build(): RocketRecord<TData> {
    if (this.data === undefined) {
      throw new RocketError('INVALID_ARGUMENT', 'RocketRecordBuilder needs data (constructor or setData)');
    }
    return new RocketRecord(this.data, { ...this.options });
  }
}
