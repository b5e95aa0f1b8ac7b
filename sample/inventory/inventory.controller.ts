import { Controller, Logger } from '@nestjs/common';
import { MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import type { OrderRequest, ServiceError, StockReservation } from '../shared/patterns.js';
import { Patterns } from '../shared/patterns.js';

/** The stock of a small shop; an order takes items out of it or is refused. */
@Controller()
export class InventoryController {
  private readonly logger = new Logger(InventoryController.name);
  private readonly stock = new Map<string, number>([
    ['gear-42', 10],
    ['cog-7', 2],
  ]);

  @MessagePattern(Patterns.ReserveStock)
  reserve(@Payload() request: OrderRequest): StockReservation {
    const available = this.stock.get(request.sku);
    if (available === undefined) throw refusal({ code: 'UNKNOWN_SKU', message: `no such article: ${request.sku}` });
    if (!Number.isInteger(request.quantity) || request.quantity < 1) {
      throw refusal({ code: 'INVALID', message: 'quantity must be a whole number ≥ 1' });
    }
    if (request.quantity > available) {
      throw refusal({ code: 'OUT_OF_STOCK', message: `only ${available} × ${request.sku} left, ${request.quantity} asked` });
    }
    this.stock.set(request.sku, available - request.quantity);
    this.logger.log(`reserved ${request.quantity} × ${request.sku}, ${available - request.quantity} left`);
    return { sku: request.sku, reserved: request.quantity, remaining: available - request.quantity };
  }
}

/** An RpcException's object reaches the caller as is (as the error of its send()). */
function refusal(error: ServiceError): RpcException {
  return new RpcException(error);
}
