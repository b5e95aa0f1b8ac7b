import { connect, createServer, type Server, type Socket } from 'node:net';

/** A proxy in front of a job server that can stop reading what its clients send: a job server that reads slowly. */
export class SlowReaderProxy {
  /** Bytes passed on to the job server. */
  bytesForwarded = 0;
  private readonly server: Server;
  private readonly peers = new Set<Socket>();
  private readonly sockets = new Set<Socket>();

  private constructor(targetPort: number) {
    this.server = createServer((peer) => {
      const upstream = connect(targetPort, '127.0.0.1');
      this.peers.add(peer);
      this.sockets.add(peer).add(upstream);
      peer.on('data', (chunk: Buffer) => {
        this.bytesForwarded += chunk.length;
        upstream.write(chunk);
      });
      upstream.pipe(peer);
      const close = () => {
        peer.destroy();
        upstream.destroy();
        this.peers.delete(peer);
        this.sockets.delete(peer);
        this.sockets.delete(upstream);
      };
      peer.on('close', close).on('error', close);
      upstream.on('close', close).on('error', close);
    });
  }

  static async start(targetPort: number): Promise<SlowReaderProxy> {
    const proxy = new SlowReaderProxy(targetPort);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get address(): string {
    return `127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  stopReading(): void {
    for (const peer of this.peers) peer.pause();
  }

  readAgain(): void {
    for (const peer of this.peers) peer.resume();
  }

  /** Cuts every connection, as a crashed job server would. */
  cut(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
