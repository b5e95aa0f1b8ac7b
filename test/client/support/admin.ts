import { connect } from 'node:net';

/** Runs one text admin command (`workers`, `status`, ...) and returns the lines before the closing `.`. */
export function adminCommand(port: number, command: string): Promise<string[]> {
  return admin(
    port,
    command,
    (text) => text === '.\n' || text.endsWith('\n.\n'),
    (text) => text.split('\n').slice(0, -2),
  );
}

/** Runs a one-line admin command (`maxqueue`, `version`, ...) and returns its answer line. */
export function adminLine(port: number, command: string): Promise<string> {
  return admin(
    port,
    command,
    (text) => text.endsWith('\n'),
    (text) => text.trim(),
  );
}

function admin<T>(port: number, command: string, complete: (text: string) => boolean, parse: (text: string) => T): Promise<T> {
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
      if (complete(text)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(parse(text));
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
