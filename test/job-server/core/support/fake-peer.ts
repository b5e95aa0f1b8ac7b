import type { BrokerPeer } from '../../../../lib/job-server/broker-peer.js';
import { JobBroker, type BrokerOptions, type SubmitRequest } from '../../../../lib/job-server/job-broker.js';
import { Priority } from '../../../../lib/job-server/job.js';
import type { PeerState } from '../../../../lib/job-server/peer-state.js';
import { PacketDecoder, PacketType } from '../../../../lib/protocol/index.js';

/** A packet as the tests compare it: the type's name and the arguments as latin1 text. */
export interface SeenPacket {
  readonly type: string;
  readonly args: string[];
}

/** A place reserved in the stream, filled later (see BrokerPeer.reserve). */
interface Slot {
  packet: Buffer | undefined;
}

/**
 * A peer without a socket: every packet the broker sends it is decoded by the protocol's own
 * decoder (so it must be valid wire bytes) and kept in order; a reserved place holds back what
 * follows it until it is filled, as the server's connection does.
 */
export class FakePeer implements BrokerPeer {
  clientId = '-';
  readonly host = '127.0.0.1';
  private readonly stream: (Buffer | Slot)[] = [];
  private readonly decoder = new PacketDecoder({ accept: 'response' });
  readonly state: PeerState;

  constructor(
    readonly broker: JobBroker,
    readonly id: number,
    public exceptions = false,
  ) {
    this.state = broker.connect(this);
  }

  send(packet: Buffer): void {
    this.stream.push(packet);
  }

  reserve(): (packet: Buffer) => void {
    const slot: Slot = { packet: undefined };
    this.stream.push(slot);
    return (packet) => (slot.packet = packet);
  }

  /** The packets that reached the peer since the last call, stopping at a place not filled yet. */
  take(): SeenPacket[] {
    const seen: SeenPacket[] = [];
    while (this.stream.length > 0) {
      const head = this.stream[0];
      const bytes = Buffer.isBuffer(head) ? head : head.packet;
      if (!bytes) break;
      this.stream.shift();
      this.decoder.feed(bytes, (frame) => {
        if (frame.kind === 'packet') seen.push({ type: PacketType[frame.type], args: frame.args.map((arg) => arg.toString('latin1')) });
      });
    }
    expect(this.decoder.isAtFrameBoundary).toBe(true);
    return seen;
  }

  /** Takes exactly one packet of this type and returns its arguments. */
  expectOne(type: PacketType): string[] {
    const packets = this.take();
    expect(packets.map((packet) => packet.type)).toEqual([PacketType[type]]);
    return packets[0].args;
  }

  // Requests, as the connection makes them from packets.

  submit(functionName: string, unique: string, data: string, options: Partial<SubmitRequest> = {}): void {
    this.broker.submit(this.state, { functionName, unique, data, priority: Priority.NORMAL, background: false, ...options });
  }

  /** Submits and returns the handle from the JOB_CREATED that must follow at once. */
  submitted(functionName: string, unique: string, data: string, options: Partial<SubmitRequest> = {}): string {
    this.submit(functionName, unique, data, options);
    return this.expectOne(PacketType.JOB_CREATED)[0];
  }

  canDo(...functions: string[]): this {
    for (const fn of functions) this.broker.canDo(this.state, fn, 0);
    return this;
  }

  grab(kind: PacketType.GRAB_JOB | PacketType.GRAB_JOB_UNIQ | PacketType.GRAB_JOB_ALL = PacketType.GRAB_JOB): void {
    this.broker.grab(this.state, kind);
  }

  /** GRAB_JOB and the JOB_ASSIGN that must follow: [handle, function, data]. */
  grabbed(): string[] {
    this.grab();
    return this.expectOne(PacketType.JOB_ASSIGN);
  }

  work(type: PacketType.WORK_DATA | PacketType.WORK_WARNING | PacketType.WORK_STATUS, handle: string, ...rest: string[]): void {
    this.broker.workUpdate(
      this.state,
      type,
      handle,
      [handle, ...rest].map((arg) => Buffer.from(arg, 'latin1')),
    );
  }

  end(type: PacketType.WORK_COMPLETE | PacketType.WORK_FAIL | PacketType.WORK_EXCEPTION, handle: string, ...rest: string[]): void {
    this.broker.workEnd(
      this.state,
      type,
      handle,
      [handle, ...rest].map((arg) => Buffer.from(arg, 'latin1')),
    );
  }

  disconnect(): void {
    this.broker.disconnect(this.state);
  }
}

/** A broker with fake peers numbered from 1, and the warnings it logged. */
export class Core {
  readonly broker: JobBroker;
  readonly warnings: string[] = [];
  private nextId = 1;

  constructor(options: Partial<BrokerOptions> = {}) {
    this.broker = new JobBroker({
      handlePrefix: 'H:test',
      jobHandles: 'sequential',
      jobRetries: 0,
      warn: (message) => this.warnings.push(message),
      ...options,
    });
  }

  peer(exceptions = false): FakePeer {
    return new FakePeer(this.broker, this.nextId++, exceptions);
  }

  worker(...functions: string[]): FakePeer {
    return this.peer().canDo(...functions);
  }

  /** The admin `status` figures of a function: [total, running, registrations]. */
  status(name: string): [number, number, number] | undefined {
    const fn = this.broker.findFunction(name);
    return fn && [fn.total, fn.running, fn.registrations];
  }

  /** The queued and delayed jobs of a function by priority: [high, normal, low]. */
  waiting(name: string): [number, number, number] | undefined {
    const fn = this.broker.findFunction(name);
    return fn && [fn.waiting(Priority.HIGH), fn.waiting(Priority.NORMAL), fn.waiting(Priority.LOW)];
  }

  /** `show jobs` rows in handle order: [handle, retries, ignored, background]. */
  jobs(): [string, number, boolean, boolean][] {
    return [...this.broker.allJobs()].map((job) => [this.broker.handleOf(job), job.retries, job.ignored, job.background]);
  }
}
