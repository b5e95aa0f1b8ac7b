export * from './framed-socket.js';
