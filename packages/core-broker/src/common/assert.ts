/**
 * Guards an invariant of RocketNest's own code. A failed assertion is a bug, never a user error:
 * it is not a RocketError and nothing catches it.
 */
export class AssertionFailure extends Error {
  override readonly name = 'AssertionFailure';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionFailure(message);
}

/** Offsets and sizes are plain numbers; they must stay integers exactly representable in a double. */
export function assertSafeOffset(value: number, what: string): void {
  // the message is built only on failure: this runs per record on the read path
  if (!(Number.isSafeInteger(value) && value >= 0))
    throw new AssertionFailure(`${what} must be a non-negative safe integer, got ${value}`);
}
