export * from './gearman.constants.js';
export * from './gearman-module-options.js';
export * from './gearman-strategy.factory.js';
export * from './gearman.module.js';
