// A Nest 12 app whose metrics @willsoto/nestjs-prometheus serves, run as a process of its own by
// metrics.spec.ts: that package is CommonJS and requires Nest 12's ES modules, which Node 20 does
// (require of ES modules) and Jest before Node 24.9 does not. Prints the replies and the scrape as JSON.
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern } from '@nestjs/microservices';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { lastValueFrom } from 'rxjs';
import { ClientGearman, GearmanModule } from '../../../../dist/esm/index.js';

class Handlers {
  square(n) {
    return n * n;
  }
}
MessagePattern('metrics.square')(Handlers.prototype, 'square', Object.getOwnPropertyDescriptor(Handlers.prototype, 'square'));
Controller()(Handlers);
class AppModule {}
Module({
  imports: [PrometheusModule.register(), GearmanModule.forRoot({ embeddedServer: { port: 0, logger: false }, metrics: true })],
  controllers: [Handlers],
})(AppModule);

const app = await NestFactory.create(AppModule, { logger: false });
app.connectMicroservice(GearmanModule.microservice());
await app.startAllMicroservices();
await app.listen(0, '127.0.0.1');
try {
  const client = app.get(ClientGearman);
  const replies = [];
  for (let n = 1; n <= 3; n++) replies.push(await lastValueFrom(client.send('metrics.square', n)));
  const response = await fetch(`${await app.getUrl()}/metrics`);
  process.stdout.write(JSON.stringify({ replies, status: response.status, body: await response.text() }));
} finally {
  await app.close();
}
