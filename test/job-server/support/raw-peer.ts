import { connect, Socket } from 'node:net';
import { encodeRequest, isCompleteAdminReply, Packet, PacketArgument, PacketDecoder, PacketType } from '../../../lib/protocol/index.js';
import { ArrivalQueue } from '../../support/arrival-queue.js';

const WAIT_MS = 3000;

/** A packet as tests compare it: the type's name and the arguments as latin1 text. */
export interface SeenPacket {
  readonly type: string;
  readonly args: string[];
}

function seen(packet: Packet): SeenPacket {
  return { type: PacketType[packet.type], args: packet.args.map((arg) => arg.toString('latin1')) };
}

/**
 * A raw Gearman connection for tests: sends request packets built with the codec and hands out
 * every response packet in arrival order. Waits are bounded; nothing waits forever.
 */
export class RawPeer {
  private readonly decoder = new PacketDecoder({ accept: 'response' });
  private readonly packets = new ArrivalQueue<SeenPacket>();
  private readonly endedPromise: Promise<void>;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk) => {
      this.decoder.feed(chunk, (frame) => {
        if (frame.kind === 'packet') this.packets.push(seen(frame));
      });
    });
    this.endedPromise = new Promise((resolve) => {
      socket.on('close', () => {
        this.packets.fail(new Error('connection closed while a packet was expected'));
        resolve();
      });
    });
    socket.on('error', () => undefined);
  }

  /** A RawPeer over a socket already connected (a TLS socket, say). */
  static over(socket: Socket): RawPeer {
    return new RawPeer(socket);
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, host);
      socket.once('connect', () => resolve(new RawPeer(socket)));
      socket.once('error', reject);
    });
  }

  send(type: PacketType, ...args: PacketArgument[]): void {
    this.socket.write(encodeRequest(type, ...args));
  }

  /** Sends a request packet built by hand, skipping the encoder's checks (to send what a broken peer would). */
  sendUnchecked(type: PacketType, ...args: string[]): void {
    this.sendWithMagic('REQ', type, ...args);
  }

  /** Sends a packet built by hand with the given magic and any type code, arguments joined by NUL. */
  sendWithMagic(magic: 'REQ' | 'RES', type: number, ...args: string[]): void {
    const payload = Buffer.from(args.join('\0'), 'latin1');
    const header = Buffer.alloc(12);
    header.write(`\0${magic}`, 0, 'latin1');
    header.writeUInt32BE(type, 4);
    header.writeUInt32BE(payload.length, 8);
    this.socket.write(Buffer.concat([header, payload]));
  }

  sendBytes(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  /** The next response packet; throws when none arrives in time or the connection closes first. */
  async next(timeoutMs = WAIT_MS): Promise<SeenPacket> {
    const [packet] = await this.packets.take(1, timeoutMs, () => `no packet within ${timeoutMs} ms`);
    return packet;
  }

  /** Waits for the next packet and checks its type; returns its arguments. */
  async expect(type: PacketType, timeoutMs = WAIT_MS): Promise<string[]> {
    const packet = await this.next(timeoutMs);
    if (packet.type !== PacketType[type]) {
      throw new Error(`expected ${PacketType[type]}, got ${packet.type} ${JSON.stringify(packet.args)}`);
    }
    return packet.args;
  }

  /** Sends ECHO_REQ and returns every packet that arrived before its ECHO_RES: a barrier that proves what did not arrive. */
  async sync(): Promise<SeenPacket[]> {
    const marker = `sync-${Math.random()}`;
    this.send(PacketType.ECHO_REQ, marker);
    const before: SeenPacket[] = [];
    for (;;) {
      const packet = await this.next();
      if (packet.type === 'ECHO_RES' && packet.args[0] === marker) return before;
      before.push(packet);
    }
  }

  /** Resolves when the server has closed the connection (bounded). */
  async closedByServer(timeoutMs = WAIT_MS): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      this.endedPromise.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    return result;
  }

  close(): Promise<void> {
    this.socket.destroy();
    return this.endedPromise;
  }
}

/** Sends one admin line (a byte string: one character a byte) on a fresh connection and returns the whole raw reply. */
export function adminQuery(port: number, line: string, listing: boolean, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no whole reply to ${JSON.stringify(line)} within ${WAIT_MS} ms: ${JSON.stringify(text)}`));
    }, WAIT_MS);
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      if (isCompleteAdminReply(text, listing)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(text);
      }
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.write(Buffer.from(`${line}\n`, 'latin1'));
  });
}
