export * from './packet-types.js';
export * from './protocol-error.js';
export * from './encoder.js';
export * from './decoder.js';
export * from './admin.js';
export * from './envelope.js';
