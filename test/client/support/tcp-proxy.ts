import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a job server, the base of the test proxies: every connection made to it
 * gets its own connection to the job server. A subclass sees what the peers send in `fromPeer`.
 */
export abstract class TcpProxy {
  /** Connections from the proxied peers (clients or workers). */
  protected readonly peers = new Set<Socket>();
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;

  protected constructor(targetPort: number) {
    this.server = createServer((peer) => {
      const upstream = connect(targetPort, '127.0.0.1');
      this.peers.add(peer);
      this.sockets.add(peer).add(upstream);
      peer.on('data', (chunk: Buffer) => {
        this.fromPeer(chunk);
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

  /** Sees each chunk a peer sends, just before it is passed on to the job server. */
  protected abstract fromPeer(chunk: Buffer): void;

  protected async listening(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get address(): string {
    return `127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  /** Resets every connection to a proxied peer (a TCP RST, as a crashed host or a middlebox sends). */
  reset(): void {
    for (const peer of this.peers) peer.resetAndDestroy();
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
