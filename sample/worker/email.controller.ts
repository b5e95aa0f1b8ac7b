import { Controller, Logger } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { GearmanContext } from '../nestjs-gearman.js';
import type { Outbox, SentEmail, User } from '../shared/patterns.js';
import { Patterns } from '../shared/patterns.js';
import { SampleConfig } from '../shared/sample-config.js';

/**
 * The e-mail service. `email.welcome` is an event: callers `emit()` it, Gearman queues it as a
 * background job, and the caller never waits for it. Here "sending" appends to a log file.
 */
@Controller()
export class EmailController {
  private readonly logger = new Logger(EmailController.name);
  private readonly sent: SentEmail[] = [];

  constructor(private readonly config: SampleConfig) {}

  // `<string>`: Nest 12 types an event handler's parameters after the payload as `unknown` unless
  // the pattern's type is given, which `@Ctx() context: GearmanContext` needs.
  @EventPattern<string>(Patterns.SendWelcomeEmail)
  async sendWelcome(@Payload() user: User, @Ctx() context: GearmanContext): Promise<void> {
    const email: SentEmail = { to: `${user.name} <${user.email}>`, subject: `Welcome, ${user.name}!`, sentAt: new Date().toISOString() };
    await mkdir(dirname(this.config.outboxFile), { recursive: true });
    await appendFile(this.config.outboxFile, `${email.sentAt}  To: ${email.to}  Subject: ${email.subject}  (job ${context.getHandle()})\n`);
    this.sent.push(email);
    this.logger.log(`sent "${email.subject}" to ${email.to}`);
  }

  @MessagePattern(Patterns.ListOutbox)
  outbox(): Outbox {
    return { file: this.config.outboxFile, emails: this.sent };
  }
}
