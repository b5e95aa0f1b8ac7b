export * from './framed-socket.js';
export * from './server-address.js';
export * from './backoff.js';
export * from './gearman-connection.js';
export * from './peer-options.js';
