import {
  BadGatewayException,
  BadRequestException,
  ConflictException,
  HttpException,
  NotFoundException,
  ServiceUnavailableException,
} from '@nestjs/common';
import { catchError, throwError, type OperatorFunction } from 'rxjs';
import { GearmanConnectionError, GearmanError } from '../nestjs-gearman.js';
import type { ServiceError } from '../shared/patterns.js';

/** Turns what a microservice call failed with into the HTTP error the gateway answers with. */
export function toHttpException(error: unknown): HttpException {
  if (isServiceError(error)) {
    switch (error.code) {
      case 'OUT_OF_STOCK':
        return new ConflictException(error);
      case 'UNKNOWN_SKU':
        return new NotFoundException(error);
      case 'INVALID':
        return new BadRequestException(error);
    }
  }
  // No job server reachable, or the connection dropped while waiting.
  if (error instanceof GearmanConnectionError) return new ServiceUnavailableException({ code: error.code, message: error.message });
  // The job failed in a way the service did not describe (WORK_FAIL, an unexpected exception).
  if (error instanceof GearmanError) return new BadGatewayException({ code: error.code, message: error.message });
  const message = typeof error === 'object' && error !== null && 'message' in error ? String(error.message) : String(error);
  return new BadGatewayException({ code: 'SERVICE_ERROR', message });
}

/** `toHttpException` as an rxjs operator, for `client.send(...).pipe(asHttpErrors())`. */
export function asHttpErrors<T>(): OperatorFunction<T, T> {
  return catchError((error: unknown) => throwError(() => toHttpException(error)));
}

function isServiceError(error: unknown): error is ServiceError {
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as ServiceError).code === 'string' &&
    typeof (error as ServiceError).message === 'string'
  );
}
