/**
 * RocketMQ 5 message ids as the official clients make them ("v1", rocketmq-clients
 * `docs/message_id.md`): 17 bytes as 34 upper-case hex characters — version `01`, the low 6 bytes
 * of a MAC address, the low 2 bytes of the process id, seconds since 2021-01-01T00:00:00Z (low 4
 * bytes, big-endian) and a 4-byte sequence. Clients also accept ids of any other shape on
 * delivery (they read them as the legacy version `00`), which is why the broker's own ids
 * (message-id.ts in message/) can be handed to them as they are.
 */
export const MESSAGE_ID_V1_HEX_LENGTH = 34;
/** 2021-01-01T00:00:00Z, the epoch of the v1 id's seconds field. */
export const MESSAGE_ID_V1_EPOCH_MS = Date.UTC(2021, 0, 1);

const V1 = /^01[0-9A-F]{32}$/;

export function isMessageIdV1(id: string): boolean {
  return V1.test(id);
}

/** Makes v1 ids for one process: `macLow6` is 12 hex digits, `pid` the process id. */
export function messageIdV1Generator(macLow6: string, pid: number): (nowMs: number) => string {
  if (!/^[0-9A-Fa-f]{12}$/.test(macLow6)) throw new Error(`macLow6 must be 12 hex digits; got "${macLow6}"`);
  const prefix = `01${macLow6.toUpperCase()}${(pid & 0xffff).toString(16).toUpperCase().padStart(4, '0')}`;
  let sequence = 0;
  return (nowMs) => {
    const seconds = Math.floor((nowMs - MESSAGE_ID_V1_EPOCH_MS) / 1000) >>> 0;
    sequence = (sequence + 1) >>> 0;
    const hex = (n: number): string => n.toString(16).toUpperCase().padStart(8, '0');
    return `${prefix}${hex(seconds)}${hex(sequence)}`;
  };
}

/**
 * The property that carries the id the client's producer made (Apache's `MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX`):
 * stored with the message, copied by the broker into delayed, committed, retried and dead-lettered
 * copies, and handed back as `message_id` on delivery. Producers may not set it as a user property.
 */
export const UNIQ_KEY_PROPERTY = 'UNIQ_KEY';
