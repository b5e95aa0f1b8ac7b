import { PacketType } from '../../../lib/protocol/index.js';
import { RawPeer } from '../../job-server/support/raw-peer.js';

/**
 * Submits foreground jobs the way a client in another process would, over a raw connection: a
 * worker of this process cannot tell, so the jobs lend it no slot (unlike those of a GearmanClient
 * of this process). Resolves with each job's result in submit order.
 */
export async function submitFromOutside(port: number, functionName: string, payloads: string[], timeoutMs = 10_000): Promise<string[]> {
  const peer = await RawPeer.connect(port);
  try {
    for (const payload of payloads) peer.send(PacketType.SUBMIT_JOB, functionName, '', payload);
    const handles: string[] = [];
    const results = new Map<string, string>();
    while (handles.length < payloads.length || results.size < payloads.length) {
      const packet = await peer.next(timeoutMs);
      if (packet.type === 'JOB_CREATED') handles.push(packet.args[0]);
      else if (packet.type === 'WORK_COMPLETE') results.set(packet.args[0], packet.args[1]);
      else if (packet.type !== 'WORK_DATA' && packet.type !== 'WORK_STATUS') throw new Error(`unexpected ${packet.type}`);
    }
    return handles.map((handle) => results.get(handle)!);
  } finally {
    await peer.close();
  }
}
