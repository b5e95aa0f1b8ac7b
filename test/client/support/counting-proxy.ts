import { PacketDecoder, PacketType } from '../../../lib/protocol/index.js';
import { TcpProxy } from './tcp-proxy.js';

/**
 * A TCP proxy in front of a job server that counts (and keeps) the bytes its peers send, so a
 * test can see what a client or worker puts on the wire.
 */
export class CountingProxy extends TcpProxy {
  /** Bytes from the proxied peers (clients or workers) toward the server. */
  bytesToServer = 0;
  private readonly sentToServer: Buffer[] = [];

  static start(targetPort: number): Promise<CountingProxy> {
    return new CountingProxy(targetPort).listening();
  }

  protected fromPeer(chunk: Buffer): void {
    this.bytesToServer += chunk.length;
    this.sentToServer.push(Buffer.from(chunk));
  }

  /** The names of the packets sent toward the server so far, over every connection, in order. */
  packetsToServer(): string[] {
    return this.requestsToServer().map((request) => request.type);
  }

  /** The packets sent toward the server so far: type names and arguments as text. */
  requestsToServer(): { type: string; args: string[] }[] {
    const requests: { type: string; args: string[] }[] = [];
    new PacketDecoder({ accept: 'request' }).feed(Buffer.concat(this.sentToServer), (frame) => {
      if (frame.kind === 'packet') requests.push({ type: PacketType[frame.type], args: frame.args.map((arg) => arg.toString('latin1')) });
    });
    return requests;
  }
}
