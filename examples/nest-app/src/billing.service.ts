import { Injectable } from '@nestjs/common';

export interface Order {
  id: string;
  amount: number;
}

/** Stands in for a payment provider: `failNext` makes the next charges throw, as an outage would. */
@Injectable()
export class BillingService {
  readonly charged: string[] = [];
  failNext = 0;

  charge(order: Order): void {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error(`payment provider unavailable (order ${order.id})`);
    }
    this.charged.push(order.id);
  }
}
