import { Controller, Get, Header } from '@nestjs/common';
import { ORDER_PAGE_HTML } from './order-page.html';

/** The demo's browser page: place an order and watch its messages arrive over the push channel. */
@Controller()
export class OrderPageController {
  @Get()
  @Header('content-type', 'text/html; charset=utf-8')
  @Header('cache-control', 'no-store')
  page(): string {
    return ORDER_PAGE_HTML;
  }
}
