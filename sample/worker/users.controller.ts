import { Controller } from '@nestjs/common';
import { MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import type { NewUser, ServiceError, User } from '../shared/patterns.js';
import { Patterns } from '../shared/patterns.js';

/** The users service: request/response over Gearman (`send()` on the calling side). */
@Controller()
export class UsersController {
  private nextId = 1;

  @MessagePattern(Patterns.RegisterUser)
  register(@Payload() user: NewUser): User {
    if (typeof user?.name !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(user?.email ?? '')) {
      const error: ServiceError = { code: 'INVALID', message: 'a user needs a name and a valid e-mail address' };
      throw new RpcException(error);
    }
    return { id: `u-${this.nextId++}`, name: user.name, email: user.email, registeredAt: new Date().toISOString() };
  }
}
