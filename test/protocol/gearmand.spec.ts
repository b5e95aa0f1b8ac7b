import { execFileSync } from 'node:child_process';
import { connect, Socket } from 'node:net';
import { hostname } from 'node:os';
import { encodeRequest, Frame, Magic, PacketDecoder, PacketType } from '../../lib/protocol/index.js';
import { ArrivalQueue } from '../support/arrival-queue.js';
import { describeWithPeers, findExecutable, RunningGearmand, startGearmand } from '../support/gearmand.js';

/** A raw connection to gearmand: writes bytes, decodes what comes back with our decoder. */
class RawConnection {
  private readonly decoder = new PacketDecoder({ accept: 'response' });
  private readonly frames = new ArrivalQueue<Frame>();

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.feed(chunk, (frame) => this.frames.push(frame));
      } catch (error) {
        this.frames.fail(error as Error);
      }
    });
    socket.on('error', (error) => this.frames.fail(error));
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.off('error', reject);
        resolve(new RawConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  write(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  /** Resolves with the next `count` frames, or rejects after 5 s. */
  next(count = 1): Promise<Frame[]> {
    return this.frames.take(count, 5000, (queued) => `waited 5 s for ${count} frame(s), got ${JSON.stringify(queued)}`);
  }

  close(): void {
    this.socket.destroy();
  }
}

const text = (frame: Frame) => (frame.kind === 'packet' ? frame.args.map((arg) => arg.toString('latin1')) : frame.line);

describeWithPeers(['gearmand'], 'our codec against real gearmand', () => {
  let gearmand: RunningGearmand;
  let connection: RawConnection;

  beforeAll(async () => {
    gearmand = await startGearmand();
  });
  afterAll(async () => {
    await gearmand?.stop();
  });
  beforeEach(async () => {
    connection = await RawConnection.open(gearmand.port);
  });
  afterEach(() => connection?.close());

  test('ECHO_REQ comes back as ECHO_RES with the same bytes, NULs included', async () => {
    const data = Buffer.from([0x68, 0x69, 0x00, 0xff, 0x00, 0x0a, 0x80]);
    connection.write(encodeRequest(PacketType.ECHO_REQ, data));
    const [echo] = await connection.next();
    expect(echo).toEqual({ kind: 'packet', magic: Magic.RES, type: PacketType.ECHO_RES, args: [data] });
  });

  test('SUBMIT_JOB_BG gets JOB_CREATED; status listings and the job status agree', async () => {
    connection.write(encodeRequest(PacketType.SUBMIT_JOB_BG, 'codec_reverse', 'codec-unique-1', 'payload'));
    const [created] = await connection.next();
    expect(created.kind).toBe('packet');
    if (created.kind !== 'packet') return;
    expect(created.magic).toBe(Magic.RES);
    expect(created.type).toBe(PacketType.JOB_CREATED);
    expect(created.args).toHaveLength(1);
    // gearmand's handles are H:<host name>:<counter>.
    const handle = created.args[0].toString();
    const match = /^H:(.+):(\d+)$/.exec(handle);
    expect(match).not.toBeNull();
    expect(hostname().startsWith(match![1])).toBe(true);

    // Binary and text on one connection: the admin listing, then the job's status.
    connection.write('status\n');
    connection.write(encodeRequest(PacketType.GET_STATUS, handle));
    connection.write(encodeRequest(PacketType.GET_STATUS_UNIQUE, 'codec-unique-1'));
    const frames = await connection.next(4);
    expect(frames.map(text)).toEqual([
      'codec_reverse\t1\t0\t0',
      '.',
      [handle, '1', '0', '0', '0'],
      ['codec-unique-1', '1', '0', '0', '0', '0'],
    ]);
    expect(frames[2]).toMatchObject({ magic: Magic.RES, type: PacketType.STATUS_RES });
    expect(frames[3]).toMatchObject({ magic: Magic.RES, type: PacketType.STATUS_RES_UNIQUE });
  });

  test('the admin version command answers OK and the version gearmand reports', async () => {
    const reported = execFileSync(findExecutable('gearmand')!, ['--version'], { encoding: 'utf8' });
    const version = /^\s*gearmand (\S+)/.exec(reported)![1];
    connection.write('version\r\n');
    expect(await connection.next()).toEqual([{ kind: 'admin', line: `OK ${version}` }]);
  });

  test('an unknown option gets an ERROR packet with a code and a text', async () => {
    connection.write(encodeRequest(PacketType.OPTION_REQ, 'no_such_option'));
    connection.write(encodeRequest(PacketType.OPTION_REQ, 'exceptions'));
    const frames = await connection.next(2);
    expect(frames[0]).toMatchObject({ magic: Magic.RES, type: PacketType.ERROR });
    expect(text(frames[0])).toEqual(['UNKNOWN_OPTION', 'Server does not recognize given option']);
    expect(frames[1]).toEqual({ kind: 'packet', magic: Magic.RES, type: PacketType.OPTION_RES, args: [Buffer.from('exceptions')] });
  });
});
