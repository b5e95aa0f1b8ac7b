import {
  Controller,
  Injectable,
  Module,
  type DynamicModule,
  type INestApplication,
  type INestMicroservice,
  type ModuleMetadata,
  type Provider,
  type Type,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { ClientGearman, GearmanModule } from '../../../lib/index.js';

/** A service that gets the module's client injected by class, as application code does. */
@Injectable()
export class GreetingService {
  constructor(private readonly client: ClientGearman) {}

  greet(name: string): Promise<string> {
    return lastValueFrom(this.client.send<string>('module.greet', name));
  }
}

@Controller()
export class GreetingHandlers {
  @MessagePattern('module.greet')
  greet(@Payload() name: string): string {
    return `hello ${name}`;
  }
}

/** An app module around the given `GearmanModule.forRoot(...)` / `forRootAsync(...)`. */
export function appModule(
  gearman: DynamicModule,
  extra: { controllers?: Type[]; providers?: Provider[]; imports?: ModuleMetadata['imports'] } = {},
) {
  @Module({
    imports: [gearman, ...(extra.imports ?? [])],
    controllers: [GreetingHandlers, ...(extra.controllers ?? [])],
    providers: [GreetingService, ...(extra.providers ?? [])],
  })
  class AppModule {}
  return AppModule;
}

/** A hybrid app (HTTP + the Gearman microservice), started. */
export async function startHybridApp(module: Type): Promise<INestApplication> {
  const app = await NestFactory.create(module, { logger: false });
  app.connectMicroservice(GearmanModule.microservice());
  await app.startAllMicroservices();
  await app.listen(0, '127.0.0.1');
  return app;
}

/** A pure microservice (`NestFactory.createMicroservice`), started. */
export async function startMicroservice(module: Type): Promise<INestMicroservice> {
  const app = await NestFactory.createMicroservice(module, { ...GearmanModule.microservice(), logger: false });
  await app.listen();
  return app;
}
