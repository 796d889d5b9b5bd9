import { RocketError } from '@rocketnest/core-broker';

/** An integer option with its default and range; `INVALID_OPTION` naming the owner and option otherwise. */
export function intOption(
  owner: string,
  name: string,
  value: number | undefined,
  defaultValue: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const v = value ?? defaultValue;
  if (!Number.isSafeInteger(v) || v < min || v > max)
    throw new RocketError(
      'INVALID_OPTION',
      `${owner} option ${name} must be an integer in [${min}, ${max}]; got ${v}`,
    );
  return v;
}
