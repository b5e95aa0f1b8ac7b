import { Controller } from '@nestjs/common';
import { MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { catchError, firstValueFrom, throwError } from 'rxjs';
import { ClientGearman } from '../nestjs-gearman.js';
import type { Order, OrderRequest, StockReservation } from '../shared/patterns.js';
import { Patterns } from '../shared/patterns.js';

/**
 * The orders service. Placing an order is a call from one microservice to another: this handler
 * asks the inventory app, through Gearman, to reserve the stock, with the `ClientGearman` the
 * worker app's `GearmanModule` provides.
 */
@Controller()
export class OrdersController {
  private nextId = 1;

  constructor(private readonly gearman: ClientGearman) {}

  @MessagePattern(Patterns.PlaceOrder)
  async place(@Payload() request: OrderRequest): Promise<Order> {
    const reservation = await firstValueFrom(
      this.gearman
        .send<StockReservation, OrderRequest>(Patterns.ReserveStock, request)
        // The inventory's refusal ({ code, message }) is passed on to our own caller unchanged.
        .pipe(catchError((error: unknown) => throwError(() => new RpcException(error as object)))),
    );
    return { id: `o-${this.nextId++}`, sku: request.sku, quantity: request.quantity, reservation };
  }
}
