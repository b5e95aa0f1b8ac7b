/**
 * What the job broker may do with a connected peer (a client, a worker, or both at once): send it
 * packets, in order, and read what the admin listings and the WORK_EXCEPTION rule need. The
 * server's ServerConnection is one; the core's unit tests use fakes that record packets.
 */
export interface BrokerPeer {
  /** Connection number, the first column of the admin `workers` listing. */
  readonly id: number;
  /** Remote address as `workers` shows it. */
  readonly host: string;
  /** Set by SET_CLIENT_ID; `-` until then. */
  readonly clientId: string;
  /** Whether this peer receives WORK_EXCEPTION (OPTION_REQ `exceptions`, or the server's option); otherwise WORK_FAIL stands in for it. */
  readonly exceptions: boolean;
  /** Queues an encoded response packet for this peer; dropped once the peer is closing. */
  send(packet: Buffer): void;
  /**
   * Reserves the next place in this peer's stream of packets: everything sent afterwards waits
   * behind it until the returned function is called with the packet that takes the place. This is
   * how a JOB_CREATED can wait for a store's commit without any later reply overtaking it.
   */
  reserve(): (packet: Buffer) => void;
}
