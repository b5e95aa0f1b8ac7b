import { TcpProxy } from './tcp-proxy.js';

/** A proxy in front of a job server that can stop reading what its clients send: a job server that reads slowly. */
export class SlowReaderProxy extends TcpProxy {
  /** Bytes passed on to the job server. */
  bytesForwarded = 0;

  static start(targetPort: number): Promise<SlowReaderProxy> {
    return new SlowReaderProxy(targetPort).listening();
  }

  protected fromPeer(chunk: Buffer): void {
    this.bytesForwarded += chunk.length;
  }

  stopReading(): void {
    for (const peer of this.peers) peer.pause();
  }

  readAgain(): void {
    for (const peer of this.peers) peer.resume();
  }
}
