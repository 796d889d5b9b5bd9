import { RocketError } from './errors';

/**
 * Reads an integer option with its default and range, failing with `INVALID_OPTION` that names
 * the owner (`'push consumer'`, `'remoting server'`…) and the option, so the caller can fix it.
 */
export function intOption(
  owner: string,
  name: string,
  value: number | undefined,
  defaultValue: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const v = value ?? defaultValue;
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new RocketError(
      'INVALID_OPTION',
      `${owner} option ${name} must be an integer in [${min}, ${max}]; got ${v}`,
    );
  }
  return v;
}
