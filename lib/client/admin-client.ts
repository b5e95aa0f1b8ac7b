import { connect as netConnect, isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { connect as tlsConnect, type ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { GearmanConnectionError, GearmanServerError } from '../common/errors.js';
import type { FrameTransport } from '../connection/frame-transport.js';
import { FramedSocket } from '../connection/framed-socket.js';
import { connectInProcess } from '../connection/in-process-servers.js';
import { resolveServerAddress, type ResolvedServerAddress, type ServerAddress } from '../connection/server-address.js';
import {
  parseBatchRow,
  parseJobRow,
  parsePriorityStatusRow,
  parseStatusRow,
  parseWorkerRow,
  type BatchRow,
  type FunctionPriorityStatus,
  type FunctionStatus,
  type JobRow,
  type WorkerRow,
} from '../protocol/admin.js';
import type { Frame } from '../protocol/decoder.js';
import { encodeRequest } from '../protocol/encoder.js';
import { PacketType } from '../protocol/packet-types.js';
import { Fifo } from '../connection/fifo.js';
import { statusNumber, type JobStatus } from './job-status.js';

export interface GearmanAdminClientOptions {
  /** A connect, and every request after it, that takes longer fails; default 5000 ms. */
  timeoutMs?: number;
  /** TLS, unless the address says otherwise. */
  tls?: boolean | TlsConnectionOptions;
}

/** What one request waits for: a listing (rows up to the `.` line), one line, or a binary reply. */
type Expected = 'listing' | 'line' | PacketType.ECHO_RES | PacketType.STATUS_RES;

interface Pending {
  readonly expected: Expected;
  readonly rows: string[];
  readonly timer: NodeJS.Timeout;
  /** Rows of a listing or the line; the arguments of a binary reply, as latin1 text. */
  resolve(value: string[]): void;
  reject(error: Error): void;
}

/** `show results` of this package's job server: what it keeps of ended jobs (no job named). */
export interface KeptResultsSummary {
  readonly kept: number;
  readonly bytes: number;
  readonly batchesRunning: number;
}

export const DEFAULT_ADMIN_TIMEOUT_MS = 5000;

/** Bounds a listing: a reply with more rows than this is refused rather than held. */
const MAX_LISTING_ROWS = 1_000_000;

/**
 * One connection to one job server for its text admin protocol (`status`, `workers`, ...) and
 * ECHO, the way `gearadmin` talks to gearmand: what health checks, the `status` command and the
 * dashboard read. Requests go out in order and their replies come back in order; each has a
 * timeout, after which the connection is closed and every request on it fails. Works with
 * gearmand and with this package's job server alike.
 */
export class GearmanAdminClient {
  private readonly pending = new Fifo<Pending>();
  private closedError: GearmanConnectionError | undefined;

  private constructor(
    private readonly framed: FramedSocket,
    readonly address: ResolvedServerAddress,
    private readonly timeoutMs: number,
  ) {}

  /** Connects; rejects with GearmanConnectionError when the server cannot be reached in time. */
  static connect(server: ServerAddress, options: GearmanAdminClientOptions = {}): Promise<GearmanAdminClient> {
    const address = resolveServerAddress(server, options.tls);
    const timeoutMs = options.timeoutMs ?? DEFAULT_ADMIN_TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new TypeError(`timeoutMs must be a whole number ≥ 1, got ${timeoutMs}`);
    return new Promise((resolve, reject) => {
      const { host, port, tls } = address;
      // A job server of this process at that address is read in memory, as clients and workers reach it.
      const socket: FrameTransport = tls
        ? tlsConnect({ ...tls, host, port, servername: tls.servername ?? (isIP(host) ? undefined : host) })
        : (connectInProcess(host, port) ?? netConnect({ host, port }));
      let client: GearmanAdminClient | undefined;
      let failure: GearmanConnectionError | undefined;
      const framed = new FramedSocket(
        socket,
        { accept: 'response' },
        {
          onFrame: (frame) => client?.onFrame(frame),
          onProtocolError: (error) => {
            failure = new GearmanConnectionError(`${address.label} broke the protocol: ${error.message}`, address.label, { cause: error });
            framed.destroy();
          },
          onClose: (error) => {
            clearTimeout(timer);
            const reason =
              failure ??
              new GearmanConnectionError(
                `${client ? 'Connection to' : 'Cannot connect to'} ${address.label}${client ? ' lost' : ''}${error ? `: ${error.message}` : ''}`,
                address.label,
                { cause: error },
              );
            if (client) client.fail(reason);
            else reject(reason);
          },
        },
      );
      const timer = setTimeout(() => {
        failure = new GearmanConnectionError(`Connecting to ${address.label} timed out after ${timeoutMs} ms`, address.label);
        framed.destroy();
      }, timeoutMs);
      socket.once(tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        client = new GearmanAdminClient(framed, address, timeoutMs);
        resolve(client);
      });
    });
  }

  /** `host:port`. */
  get label(): string {
    return this.address.label;
  }

  /** ECHO_REQ round trip, in milliseconds. */
  async ping(): Promise<number> {
    const started = performance.now();
    await this.request(encodeRequest(PacketType.ECHO_REQ, 'ping'), PacketType.ECHO_RES);
    return performance.now() - started;
  }

  /** GET_STATUS of one job: whether the server knows it, whether it runs, and its progress. */
  async jobStatus(handle: string): Promise<JobStatus> {
    const [, known, running, numerator, denominator] = await this.request(
      encodeRequest(PacketType.GET_STATUS, handle),
      PacketType.STATUS_RES,
    );
    return {
      handle,
      known: known === '1',
      running: running === '1',
      numerator: statusNumber(Buffer.from(numerator, 'latin1')),
      denominator: statusNumber(Buffer.from(denominator, 'latin1')),
    };
  }

  /** `status`: every function with its jobs (queued and running) and the workers that can do it. */
  async status(): Promise<FunctionStatus[]> {
    return (await this.listing('status')).map(parseStatusRow);
  }

  /** `prioritystatus`: queued jobs by priority; undefined when the server does not know the command. */
  async priorityStatus(): Promise<FunctionPriorityStatus[] | undefined> {
    try {
      return (await this.listing('prioritystatus')).map(parsePriorityStatusRow);
    } catch (error) {
      if (error instanceof GearmanServerError && error.code === 'UNKNOWN_COMMAND') return undefined;
      throw error;
    }
  }

  /** `workers`: every connection, with the functions it registered. */
  async workers(): Promise<WorkerRow[]> {
    return (await this.listing('workers')).map(parseWorkerRow);
  }

  /** `show jobs`: every job the server holds. */
  async jobs(): Promise<JobRow[]> {
    return (await this.listing('show jobs')).map(parseJobRow);
  }

  /** `show results`; undefined when the server keeps no results (gearmand, or `results: false`). */
  async keptResults(): Promise<KeptResultsSummary | undefined> {
    const rows = await this.unlessUnknown(() => this.listing('show results'));
    if (!rows) return undefined;
    const value = (key: string) => Number(rows.find((row) => row.startsWith(`${key}\t`))?.slice(key.length + 1) ?? 0);
    return { kept: value('kept'), bytes: value('bytes'), batchesRunning: value('batches_running') };
  }

  /**
   * `show batches`: the running batches, oldest first (up to 1,000); undefined when the server
   * coordinates none (gearmand). Its handles are keys to results, so a job server lets only peers
   * that may run every admin command list them.
   */
  async runningBatches(): Promise<BatchRow[] | undefined> {
    return (await this.unlessUnknown(() => this.listing('show batches')))?.map(parseBatchRow);
  }

  /** `version`. */
  async version(): Promise<string> {
    return this.okValue('version');
  }

  /** `cancel job HANDLE`: the job's clients get WORK_FAIL. Rejects with GearmanServerError (e.g. UNKNOWN_JOB). */
  async cancelJob(handle: string): Promise<void> {
    checkWord(handle, 'A job handle');
    await this.okValue(`cancel job ${handle}`);
  }

  /**
   * `pause function NAME`: the server keeps the function's jobs queued and hands none to workers
   * until `resumeFunction`. An extension of this package's job server: gearmand answers
   * UNKNOWN_COMMAND (a GearmanServerError).
   */
  async pauseFunction(name: string): Promise<void> {
    checkWord(name, 'A function name');
    await this.okValue(`pause function ${name}`);
  }

  /** `resume function NAME`: undoes `pauseFunction`. */
  async resumeFunction(name: string): Promise<void> {
    checkWord(name, 'A function name');
    await this.okValue(`resume function ${name}`);
  }

  /** `show paused functions`; undefined when the server does not know the command (gearmand). */
  async pausedFunctions(): Promise<string[] | undefined> {
    return this.unlessUnknown(() => this.listing('show paused functions'));
  }

  /** Closes the connection; requests still waiting fail. */
  close(): void {
    this.fail(new GearmanConnectionError(`Connection to ${this.label} closed`, this.label));
    this.framed.destroy();
  }

  /** What `request` resolves to; undefined when the server does not know the command (gearmand). */
  private async unlessUnknown<T>(request: () => Promise<T>): Promise<T | undefined> {
    try {
      return await request();
    } catch (error) {
      if (error instanceof GearmanServerError && (error.code === 'UNKNOWN_COMMAND' || error.code === 'UNKNOWN_SHOW_ARGUMENTS'))
        return undefined;
      throw error;
    }
  }

  private async okValue(command: string): Promise<string> {
    const [line] = await this.request(Buffer.from(`${command}\n`, 'utf8'), 'line');
    if (line === 'OK') return '';
    if (line.startsWith('OK ')) return line.slice(3);
    throw new GearmanServerError('BAD_ADMIN_REPLY', `${this.label} answered ${command} with ${JSON.stringify(line)}`);
  }

  private listing(command: string): Promise<string[]> {
    return this.request(Buffer.from(`${command}\n`, 'utf8'), 'listing');
  }

  private request(bytes: Buffer, expected: Expected): Promise<string[]> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new GearmanConnectionError(`${this.label} did not answer within ${this.timeoutMs} ms`, this.label));
        this.framed.destroy();
      }, this.timeoutMs);
      this.pending.push({ expected, rows: [], timer, resolve, reject });
      this.framed.write(bytes);
    });
  }

  private onFrame(frame: Frame): void {
    const waiter = this.pending.peek();
    if (!waiter) return this.unexpected(frame.kind === 'admin' ? JSON.stringify(frame.line) : PacketType[frame.type]);
    if (frame.kind === 'packet') {
      if (frame.type === PacketType.ERROR) {
        return this.settle(new GearmanServerError(frame.args[0].toString('utf8'), frame.args[1].toString('utf8')));
      }
      if (waiter.expected !== frame.type) return this.unexpected(PacketType[frame.type]);
      return this.settle(frame.args.map((arg) => arg.toString('latin1')));
    }
    const line = frame.line;
    if (waiter.expected !== 'line' && waiter.expected !== 'listing') return this.unexpected(JSON.stringify(line));
    // An ERR line answers any command; a listing's rows are tab-separated, so an ERR line has no tab.
    if (waiter.rows.length === 0 && /^ERR( |$)/.test(line) && !line.includes('\t')) {
      const [, code = 'UNKNOWN', ...text] = line.split(' ');
      return this.settle(new GearmanServerError(code, text.join(' ').replace(/\+/g, ' ')));
    }
    if (waiter.expected === 'line') return this.settle([line]);
    if (line === '.') return this.settle(waiter.rows);
    if (waiter.rows.length >= MAX_LISTING_ROWS) return this.unexpected(`a listing of more than ${MAX_LISTING_ROWS} rows`);
    waiter.rows.push(line);
  }

  private settle(outcome: string[] | Error): void {
    const waiter = this.pending.shift()!;
    clearTimeout(waiter.timer);
    if (outcome instanceof Error) waiter.reject(outcome);
    else waiter.resolve(outcome);
  }

  private unexpected(what: string): void {
    this.fail(new GearmanConnectionError(`${this.label} sent ${what}, which answers no request`, this.label));
    this.framed.destroy();
  }

  private fail(error: GearmanConnectionError): void {
    this.closedError ??= error;
    for (let waiter = this.pending.shift(); waiter; waiter = this.pending.shift()) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }
}

/** An admin command's words end at a space or a newline: an argument holding one would become another command. */
function checkWord(word: string, what: string): void {
  if (typeof word !== 'string' || word.length === 0 || /[\s\0]/.test(word)) {
    throw new TypeError(`${what} must be a non-empty word without spaces, got ${JSON.stringify(word)}`);
  }
}
