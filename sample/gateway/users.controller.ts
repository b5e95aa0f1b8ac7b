import { Body, Controller, Get, Post } from '@nestjs/common';
import { firstValueFrom } from 'rxjs';
import { ClientGearman } from '../nestjs-gearman.js';
import type { NewUser, Outbox, User } from '../shared/patterns.js';
import { Patterns } from '../shared/patterns.js';
import { asHttpErrors } from './rpc-errors.js';

@Controller()
export class UsersController {
  constructor(private readonly gearman: ClientGearman) {}

  /**
   * send(): a foreground job, the HTTP request waits for the users service's answer. Then emit():
   * a background job for the welcome e-mail, which the request does not wait for (it gets the job
   * handle once the job server has queued it).
   */
  @Post('users')
  async register(@Body() newUser: NewUser) {
    const user = await firstValueFrom(this.gearman.send<User, NewUser>(Patterns.RegisterUser, newUser).pipe(asHttpErrors()));
    const welcomeEmailJob = await firstValueFrom(this.gearman.emit<string, User>(Patterns.SendWelcomeEmail, user));
    return { user, welcomeEmailJob };
  }

  /** What the e-mail service has sent so far. */
  @Get('emails')
  outbox(): Promise<Outbox> {
    return firstValueFrom(this.gearman.send<Outbox>(Patterns.ListOutbox, {}).pipe(asHttpErrors()));
  }
}
