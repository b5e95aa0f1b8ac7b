import { Priority } from '../../../lib/job-server/job.js';
import { defaultJobServerLimits, JOB_OVERHEAD_BYTES, NO_LIMITS, resolveJobServerLimits } from '../../../lib/job-server/server-limits.js';
import { PacketType } from '../../../lib/protocol/index.js';
import { Core } from './support/fake-peer.js';

const P = PacketType;
const QUEUE_FULL = { type: 'ERROR', args: ['QUEUE_ERROR', 'Job queue is full'] };

describe('JobBroker limits on queued jobs', () => {
  test("maxQueuedJobsPerFunction is every function's maxqueue until the admin command sets another (0 = none)", () => {
    const core = new Core({ maxQueuedJobsPerFunction: 2 });
    const client = core.peer();
    client.submitted('f', '', '1', { background: true });
    client.submitted('f', '', '2', { background: true, priority: Priority.HIGH });
    client.submit('f', '', '3', { background: true, priority: Priority.LOW });
    expect(client.take()).toEqual([QUEUE_FULL]);
    // Another function has its own count.
    client.submitted('g', '', '1', { background: true });
    core.broker.setMaxQueue('f', [0, 0, 0]);
    client.submitted('f', '', '3', { background: true });
    core.broker.setMaxQueue('g', [1, 1, 1]);
    client.submit('g', '', '2', { background: true });
    expect(client.take()).toEqual([QUEUE_FULL]);
  });

  test("restored jobs count toward their function's limit, though restore itself is never refused", () => {
    const core = new Core({ maxQueuedJobsPerFunction: 2 });
    for (const unique of ['a', 'b', 'c']) core.broker.restore({ functionName: 'kept', unique, data: 'x', priority: Priority.NORMAL });
    expect(core.status('kept')).toEqual([3, 0, 0]);
    const client = core.peer();
    client.submit('kept', 'd', 'x', { background: true });
    expect(client.take()).toEqual([QUEUE_FULL]);
    const worker = core.worker('kept');
    for (let i = 0; i < 2; i++) worker.end(P.WORK_COMPLETE, worker.grabbed()[0]);
    client.submitted('kept', 'd', 'x', { background: true });
  });

  test('maxQueuedJobsPerConnection: new jobs a connection submitted count until they end; joining a job does not count', () => {
    const core = new Core({ maxQueuedJobsPerConnection: 2 });
    const producer = core.peer();
    const other = core.peer();
    const first = producer.submitted('f', 'a', 'x', { background: true });
    producer.submitted('f', 'b', 'x');
    producer.submit('f', 'c', 'x', { background: true });
    expect(producer.take()).toEqual([
      { type: 'ERROR', args: ['QUEUE_ERROR', 'This connection has 2 jobs queued, its limit (maxQueuedJobsPerConnection)'] },
    ]);
    // Joining an existing job (same unique id) creates nothing, so it is not refused.
    expect(producer.submitted('f', 'a', 'x', { background: true })).toBe(first);
    // The limit is per connection.
    other.submitted('f', 'c', 'x', { background: true });
    other.submitted('f', 'd', 'x', { background: true });
    // A job that ends frees its place, for its own connection only.
    const worker = core.worker('f');
    expect(worker.grabbed()[0]).toBe(first);
    worker.end(P.WORK_COMPLETE, first);
    producer.submitted('f', 'e', 'x', { background: true });
    other.submit('f', 'f', 'x', { background: true });
    expect(other.take()[0].type).toBe('ERROR');
  });

  test('maxQueuedJobsPerConnection: restored jobs belong to no connection; a producer that left leaves its jobs counted nowhere', () => {
    const core = new Core({ maxQueuedJobsPerConnection: 1 });
    core.broker.restore({ functionName: 'f', unique: 'old', data: 'x', priority: Priority.NORMAL });
    const producer = core.peer();
    producer.submitted('f', 'a', 'x', { background: true });
    producer.disconnect();
    expect(core.status('f')).toEqual([2, 0, 0]);
    const worker = core.worker('f');
    for (let i = 0; i < 2; i++) worker.end(P.WORK_COMPLETE, worker.grabbed()[0]);
    expect(core.status('f')).toEqual([0, 0, 1]);
  });

  test('maxQueuedBytes: the estimate of every job here (unique id, payload, overhead) refuses what would pass it, and frees as jobs end', () => {
    const each = 'u'.length + 100 + JOB_OVERHEAD_BYTES;
    const core = new Core({ maxQueuedBytes: 3 * each });
    const client = core.peer();
    const handles = ['a', 'b', 'c'].map((unique) => client.submitted('f', unique, 'x'.repeat(100), { background: true }));
    expect(core.broker.queuedJobBytes).toBe(3 * each);
    client.submit('g', 'd', 'x'.repeat(100), { background: true });
    expect(client.take()).toEqual([
      { type: 'ERROR', args: ['QUEUE_ERROR', `The job server's queue is full: ${3 * each} bytes of jobs (maxQueuedBytes)`] },
    ]);
    const worker = core.worker('f');
    expect(worker.grabbed()[0]).toBe(handles[0]);
    worker.end(P.WORK_COMPLETE, handles[0]);
    expect(core.broker.queuedJobBytes).toBe(2 * each);
    client.submitted('g', 'd', 'x'.repeat(100), { background: true });
  });
});

describe('JobServerLimits', () => {
  test('defaults: a million 100-byte background jobs fit one function with room to spare; per connection and per address off', () => {
    const limits = defaultJobServerLimits();
    expect(limits).toMatchObject({
      outputBufferSoftBytes: 4 * 1024 * 1024,
      outputBufferHardBytes: 64 * 1024 * 1024,
      framesPerTurn: 4,
      maxQueuedJobsPerFunction: 2_000_000,
      maxQueuedJobsPerConnection: 0,
      maxConnections: 10_000,
      maxConnectionsPerAddress: 0,
      idleTimeoutMs: 300_000,
      packetTimeoutMs: 30_000,
    });
    // A million jobs with a 36-byte unique id and a 100-byte payload, as the estimate counts them.
    expect(1_000_000 * (36 + 100 + JOB_OVERHEAD_BYTES)).toBeLessThan(limits.maxQueuedBytes);
  });

  test('resolve: given limits replace the defaults; 0 turns one off; anything else is refused by name', () => {
    expect(resolveJobServerLimits({ framesPerTurn: 8, maxConnections: 0 })).toMatchObject({
      framesPerTurn: 8,
      maxConnections: 0,
      idleTimeoutMs: 300_000,
    });
    expect(resolveJobServerLimits({ ...NO_LIMITS })).toEqual(NO_LIMITS);
    expect(() => resolveJobServerLimits({ idleTimeoutMs: -1 })).toThrow(/limits\.idleTimeoutMs must be a whole number ≥ 0/);
    expect(() => resolveJobServerLimits({ framesPerTurn: 1.5 })).toThrow(RangeError);
    expect(() => resolveJobServerLimits({ maxConnections: Number.NaN })).toThrow(RangeError);
    expect(() => resolveJobServerLimits({ nonsense: 1 } as never)).toThrow(/limits\.nonsense is not a job server limit/);
    expect(() => resolveJobServerLimits({ outputBufferSoftBytes: 10, outputBufferHardBytes: 5 })).toThrow(/must not be over/);
  });
});
