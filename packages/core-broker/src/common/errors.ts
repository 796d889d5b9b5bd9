/**
 * Every failure RocketNest reports is a {@link RocketError} with a stable `code` from this table.
 * The table is shared by the store, the broker, the wire protocol and the clients, so a code means
 * the same thing wherever it surfaces. `retriable` tells the caller whether trying again (later, or
 * on another broker) can succeed without changing the request.
 */
export const ERROR_CODES = {
  /** A request field is malformed: bad topic or group name, oversize body, bad property. */
  INVALID_ARGUMENT: { retriable: false },
  /** A tag expression or SQL92 filter does not parse; the message gives the position. */
  INVALID_FILTER: { retriable: false },
  /** An option passed to a constructor or `open()` is out of range or of the wrong type. */
  INVALID_OPTION: { retriable: false },
  /** The topic does not exist on this broker (and auto-creation is off). */
  TOPIC_NOT_FOUND: { retriable: false },
  /** The topic's permissions forbid the operation (read or write). */
  PERMISSION_DENIED: { retriable: false },
  /** No message with the given id, transaction id or offset. */
  MESSAGE_NOT_FOUND: { retriable: false },
  /** A pop receipt handle is malformed, or its delivery was already acked or redelivered. */
  INVALID_RECEIPT_HANDLE: { retriable: false },
  /** The store's disk is above its full-ratio watermark; appends are refused until space is freed. */
  DISK_FULL: { retriable: true },
  /** The broker is over a flow-control watermark; back off and retry. */
  BROKER_BUSY: { retriable: true },
  /**
   * The broker is a slave (RocketMQ `brokerRole` SLAVE): it serves reads and refuses every write
   * (sends, transactions, pop and ack); send to the master of the broker name instead.
   */
  NOT_MASTER: { retriable: true },
  /**
   * A slave's commit log does not continue its master's (another store id, a different segment
   * size, bytes that differ where the slave's log ends, or a log longer than the master's): it is
   * refused rather than patched. Empty the slave's store directory to copy the master afresh.
   */
  REPLICA_DIVERGED: { retriable: false },
  /** A write or flush of the store failed; the store refuses appends until it is reopened. */
  STORE_IO_ERROR: { retriable: true },
  /** Another live process has the store's data directory open (its `lock` file names the process). */
  STORE_LOCKED: { retriable: false },
  /** Data on disk failed its checksum or has an impossible layout. */
  STORE_CORRUPT: { retriable: false },
  /** The store (or client, or broker) was closed, or is closing. */
  CLOSED: { retriable: false },
  /** An operation did not complete within its time limit. */
  TIMEOUT: { retriable: true },
  /** The broker cannot be reached: unknown to the transport, closed, or its connection is lost. */
  BROKER_UNAVAILABLE: { retriable: true },
  /**
   * A name server refused a broker registration (or unregistration) under the name and id of a
   * live broker at another address: the live one keeps its routes until it unregisters, its
   * connection closes or its registration expires; the refused broker retries at its next period.
   */
  BROKER_NAME_CONFLICT: { retriable: true },
  /** No configured name server answered a route query (all down or unreachable). */
  NAME_SERVER_UNAVAILABLE: { retriable: true },
  /** A producer gave up on a send after its retries; `cause` is the last failure, `retriable` is its. */
  SEND_FAILED: { retriable: false },
  /** Bytes on the wire break the remoting protocol: bad magic, impossible length, truncated field. */
  PROTOCOL_ERROR: { retriable: false },
  /**
   * The broker's ACL refused the request: it is unsigned, signed by an unknown account or with a
   * wrong secret, or the account lacks the permission (the message does not say which).
   */
  ACCESS_DENIED: { retriable: false },
  /** A read position points at messages the broker no longer holds (retention removed them). */
  POSITION_EXPIRED: { retriable: false },
  /** A read position was made by a broker whose data directory has since been replaced (another store id). */
  EPOCH_MISMATCH: { retriable: false },
  /**
   * An outbox `add()` or inbox `process()` was given a connection that is not inside a database
   * transaction (or whose transaction already failed): open one and pass its handle.
   */
  NOT_IN_TRANSACTION: { retriable: false },
  /** The outbox's or inbox's database refused a statement; `cause` is the driver's error. */
  DATABASE_ERROR: { retriable: true },
} as const satisfies Record<string, { retriable: boolean }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface RocketErrorOptions {
  /** The underlying error, when this one wraps another. */
  cause?: unknown;
  /** Overrides the code's default retriability when the situation says otherwise. */
  retriable?: boolean;
}

/** The one base class of every error RocketNest throws or rejects with. */
export class RocketError extends Error {
  override readonly name = 'RocketError';
  readonly code: ErrorCode;
  /** True when the same request may succeed if tried again later or elsewhere. */
  readonly retriable: boolean;

  constructor(code: ErrorCode, message: string, options: RocketErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retriable = options.retriable ?? ERROR_CODES[code].retriable;
  }
}

/** True when `error` is a {@link RocketError}, optionally with the given code. */
export function isRocketError(error: unknown, code?: ErrorCode): error is RocketError {
  return error instanceof RocketError && (code === undefined || error.code === code);
}
