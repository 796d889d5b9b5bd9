import { RocketError } from '../common/errors';

/**
 * Reads the fields of an admin request (decoded JSON, so any shape), each checked for its type;
 * a wrong one is `INVALID_ARGUMENT` naming the operation and the field.
 */
export class AdminRequest {
  private readonly fields: Record<string, unknown>;

  constructor(
    private readonly operation: string,
    value: unknown,
  ) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new RocketError('INVALID_ARGUMENT', `${operation}: the request must be a JSON object`);
    }
    this.fields = value as Record<string, unknown>;
  }

  str(field: string): string {
    const v = this.fields[field];
    if (typeof v !== 'string' || v === '') this.bad(field, 'a non-empty string');
    return v as string;
  }

  optStr(field: string): string | undefined {
    return this.fields[field] === undefined ? undefined : this.str(field);
  }

  int(field: string, min = 0): number {
    const v = this.fields[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) this.bad(field, `an integer ≥ ${min}`);
    return v as number;
  }

  optInt(field: string, min = 0): number | undefined {
    return this.fields[field] === undefined ? undefined : this.int(field, min);
  }

  optBool(field: string): boolean | undefined {
    const v = this.fields[field];
    if (v !== undefined && typeof v !== 'boolean') this.bad(field, 'a boolean');
    return v as boolean | undefined;
  }

  private bad(field: string, what: string): never {
    throw new RocketError('INVALID_ARGUMENT', `${this.operation}: field "${field}" must be ${what}`);
  }
}
