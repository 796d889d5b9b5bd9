/** Injection token of {@link PaymentServiceOptions}. */
export const PAYMENT_SERVICE_OPTIONS = Symbol('PAYMENT_SERVICE_OPTIONS');

export interface PaymentServiceOptions {
  /** SQLite file of the payment service, or `':memory:'`. */
  databaseFile: string;
  /** Share (0–1) of ordinary cards the simulated provider declines. */
  failureRate: number;
  /** Source of randomness for the simulated provider, `[0, 1)`. Default `Math.random`; tests inject their own. */
  random?: () => number;
}
