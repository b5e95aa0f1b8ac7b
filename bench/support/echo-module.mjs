// The handler every Nest round-trip benchmark serves: `echo` returns its payload.
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { MessagePattern } from '@nestjs/microservices';

export class EchoController {
  echo(data) {
    return data;
  }
}
MessagePattern('echo')(EchoController.prototype, 'echo', Object.getOwnPropertyDescriptor(EchoController.prototype, 'echo'));
Controller()(EchoController);

export class EchoModule {}
Module({ controllers: [EchoController] })(EchoModule);
