import { connect, createServer, type Server, type Socket } from 'node:net';
import { PacketDecoder, PacketType } from '../../../lib/protocol/index.js';

/**
 * A TCP proxy in front of a job server that counts (and keeps) the bytes each side sends, so a
 * test can see what a client or worker puts on the wire.
 */
export class CountingProxy {
  /** Bytes from the proxied peer (client or worker) toward the server. */
  bytesToServer = 0;
  bytesToPeer = 0;
  private readonly sentToServer: Buffer[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  private constructor(targetPort: number) {
    this.server = createServer((peer) => {
      const upstream = connect(targetPort, '127.0.0.1');
      this.sockets.add(peer).add(upstream);
      peer.on('data', (chunk: Buffer) => {
        this.bytesToServer += chunk.length;
        this.sentToServer.push(Buffer.from(chunk));
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        this.bytesToPeer += chunk.length;
        peer.write(chunk);
      });
      const close = () => {
        peer.destroy();
        upstream.destroy();
        this.sockets.delete(peer);
        this.sockets.delete(upstream);
      };
      peer.on('close', close).on('error', close);
      upstream.on('close', close).on('error', close);
    });
  }

  static async start(targetPort: number): Promise<CountingProxy> {
    const proxy = new CountingProxy(targetPort);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get address(): string {
    return `127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  /** The names of the packets sent toward the server so far, over every connection, in order. */
  packetsToServer(): string[] {
    const names: string[] = [];
    new PacketDecoder({ accept: 'request' }).feed(Buffer.concat(this.sentToServer), (frame) => {
      if (frame.kind === 'packet') names.push(PacketType[frame.type]);
    });
    return names;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
