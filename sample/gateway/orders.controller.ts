import { Body, Controller, Post } from '@nestjs/common';
import { firstValueFrom } from 'rxjs';
import { ClientGearman } from '../nestjs-gearman.js';
import type { Order, OrderRequest } from '../shared/patterns.js';
import { Patterns } from '../shared/patterns.js';
import { asHttpErrors } from './rpc-errors.js';

@Controller('orders')
export class OrdersController {
  constructor(private readonly gearman: ClientGearman) {}

  /** The orders service reserves the stock with the inventory service: two hops over Gearman. */
  @Post()
  place(@Body() order: OrderRequest): Promise<Order> {
    return firstValueFrom(this.gearman.send<Order, OrderRequest>(Patterns.PlaceOrder, order).pipe(asHttpErrors()));
  }
}
