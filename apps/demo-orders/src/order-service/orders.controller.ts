import { BadRequestException, Body, Controller, Get, NotFoundException, Param, Post } from '@nestjs/common';
import type { OrderRecord, OrderView } from './order.repository';
import { OrderService, type PlaceOrderInput } from './order.service';

/** Largest order the demo accepts, in cents. */
export const MAX_AMOUNT_CENTS = 100_000_000;

/** Validates a `POST /orders` body: `{ amountCents: positive integer, card: 12–19 digits }`. */
export function parsePlaceOrder(body: unknown): PlaceOrderInput {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequestException(
      'expected a JSON object { "amountCents": 1999, "card": "4242424242424242" }',
    );
  }
  const { amountCents, card } = body as Record<string, unknown>;
  if (
    !Number.isSafeInteger(amountCents) ||
    (amountCents as number) <= 0 ||
    (amountCents as number) > MAX_AMOUNT_CENTS
  ) {
    throw new BadRequestException(`amountCents must be an integer from 1 to ${MAX_AMOUNT_CENTS}`);
  }
  const digits = typeof card === 'string' ? card.replace(/[\s-]/g, '') : '';
  if (!/^\d{12,19}$/.test(digits)) {
    throw new BadRequestException('card must be a string of 12 to 19 digits');
  }
  return { amountCents: amountCents as number, card: digits };
}

@Controller('orders')
export class OrdersController {
  constructor(private readonly orders: OrderService) {}

  /** Places an order: 201 with the order (status `created`). */
  @Post()
  place(@Body() body: unknown): Promise<OrderView> {
    return this.orders.place(parsePlaceOrder(body));
  }

  /** The order and its timeline, each entry with the broker's message id; 404 when unknown. */
  @Get(':id')
  async get(@Param('id') id: string): Promise<OrderView> {
    const order = await this.orders.get(id);
    if (!order) throw new NotFoundException(`no order "${id}"`);
    return order;
  }

  /** The 50 most recent orders. */
  @Get()
  list(): Promise<OrderRecord[]> {
    return this.orders.recent(50);
  }
}
