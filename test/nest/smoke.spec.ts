import 'reflect-metadata';
import { Server } from '@nestjs/microservices';
import { Injectable } from '@nestjs/common';
import { createRequire } from 'node:module';
test('loads nest', () => {
  expect(typeof Server).toBe('function');
  expect(Injectable).toBeDefined();
});
