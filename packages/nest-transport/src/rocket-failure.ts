import { HttpException, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { catchError, throwError, type Observable } from 'rxjs';
import { RocketContext } from './rocket.context';

/**
 * Throw it (or wrap another error in it: `new NonRetriableError('bad order', { cause })`) from a
 * `@RocketListener` for a message that can never succeed: it goes to the group's dead-letter queue
 * at once instead of being retried 16 times (RocketMQ: `delayLevelWhenNextConsume = -1`).
 */
export class NonRetriableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NonRetriableError';
  }
}

/** An error class (`Error` or a subclass), or a test on the error, naming failures that skip the retries. */
export type RocketDeadLetterMatcher =
  (abstract new (...args: never[]) => Error) | ((error: unknown) => boolean);

/**
 * Whether an error is Nest's `BadRequestException` (or any `HttpException` with status 400): what
 * `ValidationPipe` and the built-in parse pipes throw for a payload that does not validate.
 */
export function isBadRequest(error: unknown): boolean {
  return error instanceof HttpException && error.getStatus() === 400;
}

/**
 * Failures that go to the dead-letter queue at once by default: {@link NonRetriableError} and a
 * failed validation ({@link isBadRequest}). Replace per server or listener with `deadLetterOn`
 * (`[]` retries everything).
 */
export const DEFAULT_DEAD_LETTER_ON: readonly RocketDeadLetterMatcher[] = Object.freeze([
  NonRetriableError,
  isBadRequest,
]);

/** Whether `error` matches one of `matchers` (a class it is an instance of, or a test it passes). */
export function matchesDeadLetter(error: unknown, matchers: readonly RocketDeadLetterMatcher[]): boolean {
  return matchers.some((matcher) =>
    matcher === Error || (matcher.prototype as unknown) instanceof Error
      ? error instanceof (matcher as abstract new (...args: never[]) => Error)
      : (matcher as (error: unknown) => boolean)(error),
  );
}

/** Where the interceptor leaves the handler's own error on the context. */
const FAILURE = Symbol('rocketnest:failure');

/**
 * Keeps the error a handler (or a pipe, such as `ValidationPipe`) threw on the message's
 * `RocketContext` before Nest's exception layer turns it into `{ status: 'error', message:
 * 'Internal server error' }`, so the server logs and classifies the real error. `@RocketListener`
 * puts it on every handler, innermost, so user interceptors and filters still see the error first.
 */
export class RocketFailureCapture implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const rocket = context.getArgByIndex<unknown>(1);
    return next.handle().pipe(
      catchError((error: unknown) => {
        if (rocket instanceof RocketContext) (rocket as unknown as Record<symbol, unknown>)[FAILURE] = error;
        return throwError(() => error);
      }),
    );
  }
}

/** The error the handler threw, as captured by {@link RocketFailureCapture}. */
export function capturedFailure(context: RocketContext): unknown {
  return (context as unknown as Record<symbol, unknown>)[FAILURE];
}

/**
 * What the server saw fail: Nest's generic `{ status: 'error', message: 'Internal server error' }`
 * is replaced by the error the handler threw, when it was captured.
 */
export function realFailure(thrown: unknown, context: RocketContext): unknown {
  const captured = capturedFailure(context);
  if (captured === undefined) return thrown;
  return thrown instanceof Error ? thrown : captured;
}
