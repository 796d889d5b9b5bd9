import { Inject, Injectable } from '@nestjs/common';
import { TEST_CARDS } from '../contracts';
import { PAYMENT_SERVICE_OPTIONS, type PaymentServiceOptions } from './payment-service.options';

/** What the simulated payment provider answered. */
export type ChargeOutcome =
  | { outcome: 'approved' }
  | { outcome: 'declined'; reason: string }
  /** The provider never answered: nothing was charged, nothing is published. */
  | { outcome: 'no-answer' };

/**
 * A simulated card payment provider. The test cards of `TEST_CARDS` always answer the same way;
 * any other card is declined with probability `failureRate`, drawn from the injected `random`.
 */
@Injectable()
export class PaymentGateway {
  private readonly random: () => number;

  constructor(@Inject(PAYMENT_SERVICE_OPTIONS) private readonly options: PaymentServiceOptions) {
    this.random = options.random ?? Math.random;
  }

  charge(card: string, _amountCents: number): ChargeOutcome {
    switch (card) {
      case TEST_CARDS.APPROVED:
        return { outcome: 'approved' };
      case TEST_CARDS.DECLINED:
        return { outcome: 'declined', reason: 'card declined' };
      case TEST_CARDS.NO_ANSWER:
        return { outcome: 'no-answer' };
      default:
        return this.random() < this.options.failureRate
          ? { outcome: 'declined', reason: 'insufficient funds' }
          : { outcome: 'approved' };
    }
  }
}
