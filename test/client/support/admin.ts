import { connect } from 'node:net';

/** Runs one text admin command (`workers`, `status`, ...) and returns the lines before the closing `.`. */
export function adminCommand(port: number, command: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`admin command ${command} got no full answer: ${JSON.stringify(text)}`));
    }, 5000);
    socket.on('connect', () => socket.write(`${command}\n`));
    socket.on('data', (chunk) => {
      text += chunk.toString('utf8');
      if (text === '.\n' || text.endsWith('\n.\n')) {
        clearTimeout(timer);
        socket.destroy();
        resolve(text.split('\n').slice(0, -2));
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
