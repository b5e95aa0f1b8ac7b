import { jest } from '@jest/globals';
import type { BrokerPeer } from '../../../lib/job-server/broker-peer.js';
import { Priority } from '../../../lib/job-server/job.js';
import {
  combineLifecycles,
  type JobEnd,
  type JobLifecycle,
  type JobView,
  type RequeueReason,
  type WorkUpdate,
} from '../../../lib/job-server/job-lifecycle.js';
import { PacketType } from '../../../lib/protocol/index.js';
import { Core } from './support/fake-peer.js';

const P = PacketType;

/** Lets settled promises run their callbacks. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** A lifecycle that writes each event as one line, with the fields that matter to it. */
class Recorder implements JobLifecycle {
  readonly events: string[] = [];
  readonly ends: [string, JobEnd][] = [];
  /** What `accepted` returns for a job, by its data. */
  acceptWith: (job: JobView) => PromiseLike<void> | void = () => undefined;

  accepted(job: JobView, runAt: number): PromiseLike<void> | void {
    this.events.push(
      `accepted ${job.handle} ${job.functionName} ${job.unique}/${job.data} p${job.priority} ${job.background ? 'bg' : 'fg'} at ${runAt}`,
    );
    return this.acceptWith(job);
  }

  joined(job: JobView, background: boolean): void {
    this.events.push(`joined ${job.handle} ${background ? 'bg' : 'fg'}`);
  }

  started(job: JobView, worker: BrokerPeer): void {
    this.events.push(`started ${job.handle} on ${worker.id}`);
  }

  progressed(job: JobView, update: WorkUpdate): void {
    const detail = update.kind === 'status' ? `${update.numerator}/${update.denominator}` : update.data.toString('latin1');
    this.events.push(`progressed ${job.handle} ${update.kind} ${detail}`);
  }

  requeued(job: JobView, reason: RequeueReason): void {
    this.events.push(`requeued ${job.handle} ${reason} retries=${job.retries}`);
  }

  ended(job: JobView, end: JobEnd): void {
    const data = 'data' in end.outcome ? ` ${end.outcome.data.toString('latin1')}` : '';
    this.events.push(`ended ${job.handle} ${end.outcome.kind}${data} ${end.numerator}/${end.denominator}`);
    this.ends.push([job.handle, end]);
  }
}

function setUp(options: { jobRetries?: number } = {}) {
  const recorder = new Recorder();
  const core = new Core({ lifecycle: recorder, ...options });
  return { recorder, core };
}

describe('JobLifecycle: the hooks a durable queue, stored results and metrics plug into', () => {
  afterEach(() => jest.useRealTimers());

  test('a foreground job from submit to WORK_COMPLETE: accepted, joined, started, progressed, ended with payload, progress and time', () => {
    jest.useFakeTimers({ now: 1_900_000_000_000 });
    const { recorder, core } = setUp();
    const client = core.peer();
    const sent: string[] = [];
    const send = client.send.bind(client);
    client.send = (packet) => {
      sent.push(`${recorder.events.length} events when ${P[packet.readUInt32BE(4)]} was sent`);
      send(packet);
    };
    const handle = client.submitted('f', 'u', 'payload', { priority: Priority.HIGH });
    expect(sent).toEqual(['1 events when JOB_CREATED was sent']);
    const joiner = core.peer();
    expect(joiner.submitted('f', 'u', 'other', { background: true })).toBe(handle);
    const worker = core.worker('f');
    worker.grabbed();
    worker.work(P.WORK_DATA, handle, 'part-1');
    worker.work(P.WORK_WARNING, handle, 'careful');
    worker.work(P.WORK_STATUS, handle, '3', '4');
    worker.work(P.WORK_DATA, handle, 'part-2');
    jest.advanceTimersByTime(1234);
    worker.end(P.WORK_COMPLETE, handle, 'result');
    expect(recorder.events).toEqual([
      `accepted ${handle} f u/payload p0 fg at 0`,
      `joined ${handle} bg`,
      `started ${handle} on ${worker.id}`,
      `progressed ${handle} data part-1`,
      `progressed ${handle} warning careful`,
      `progressed ${handle} status 3/4`,
      `progressed ${handle} data part-2`,
      `ended ${handle} complete result 3/4`,
    ]);
    expect(recorder.ends[0][1].endedAt).toBe(1_900_000_001_234);
  });

  test('ended comes once per job with the reason it left: fail, exception, retries exhausted, abandoned, cancelled', () => {
    jest.useFakeTimers();
    const { recorder, core } = setUp({ jobRetries: 2 });
    const client = core.peer();
    const fail = client.submitted('f', '', 'fail', { background: true });
    const exception = client.submitted('f', '', 'exception', { background: true });
    const exhausted = client.submitted('f', '', 'exhausted', { background: true });
    const abandoned = client.submitted('f', '', 'abandoned');
    const cancelledQueued = client.submitted('g', '', 'cancelled queued', { background: true });
    const cancelledRunning = client.submitted('h', '', 'cancelled running', { background: true });
    const worker = core.worker('f', 'h');
    worker.grabbed();
    worker.end(P.WORK_FAIL, fail);
    worker.grabbed();
    worker.end(P.WORK_EXCEPTION, exception, 'boom');
    worker.grabbed(); // exhausted, lost once: back to the tail of its queue
    worker.broker.cantDo(worker.state, 'f');
    worker.canDo('f');
    worker.grabbed(); // abandoned
    worker.grabbed(); // exhausted again
    client.disconnect();
    worker.grabbed(); // cancelled running
    core.broker.cancel(cancelledQueued);
    core.broker.cancel(cancelledRunning);
    // Gives its jobs back newest first: the cancelled one leaves without a second `ended`, then
    // `exhausted` is lost a second time, then `abandoned` has no client left.
    worker.disconnect();
    recorder.events.splice(0, 6); // the six accepted events
    expect(recorder.events).toEqual([
      `started ${fail} on ${worker.id}`,
      `ended ${fail} fail 0/0`,
      `started ${exception} on ${worker.id}`,
      `ended ${exception} exception boom 0/0`,
      `started ${exhausted} on ${worker.id}`,
      `requeued ${exhausted} cant-do retries=1`,
      `started ${abandoned} on ${worker.id}`,
      `started ${exhausted} on ${worker.id}`,
      `started ${cancelledRunning} on ${worker.id}`,
      `ended ${cancelledQueued} cancelled 0/0`,
      `ended ${cancelledRunning} cancelled 0/0`,
      `ended ${exhausted} retries-exhausted 0/0`,
      `ended ${abandoned} abandoned 0/0`,
    ]);
    expect(core.jobs()).toEqual([]);
  });

  test('a queued foreground job whose clients all leave ends as abandoned; requeue reasons: worker gone, timeout', () => {
    jest.useFakeTimers();
    const { recorder, core } = setUp();
    const client = core.peer();
    const queued = client.submitted('f', '', 'q');
    const background = core.peer().submitted('f', '', 'b', { background: true });
    client.disconnect();
    const slow = core.peer();
    slow.broker.canDo(slow.state, 'f', 1000);
    expect(slow.grabbed()[0]).toBe(background);
    jest.advanceTimersByTime(1000);
    const next = core.worker('f');
    expect(next.grabbed()[0]).toBe(background);
    next.disconnect();
    expect(recorder.events.slice(2)).toEqual([
      `ended ${queued} abandoned 0/0`,
      `started ${background} on ${slow.id}`,
      `requeued ${background} timeout retries=1`,
      `started ${background} on ${next.id}`,
      `requeued ${background} worker-gone retries=2`,
    ]);
  });

  test('accepted may hold JOB_CREATED until a commit: nothing sent to that peer afterwards overtakes it', async () => {
    const { recorder, core } = setUp();
    let commit!: () => void;
    recorder.acceptWith = (job) => (job.unique === 'slow' ? new Promise<void>((resolve) => (commit = resolve)) : undefined);
    const client = core.peer().canDo('f');
    client.broker.preSleep(client.state);
    client.submit('f', 'slow', 'a', { background: true });
    client.submit('f', 'fast', 'b');
    const joiner = core.peer();
    joiner.submit('f', 'slow', 'a');
    const worker = core.worker('f');
    expect(worker.grabbed()[2]).toBe('a'); // the job runs already: only the reply waits
    const slow = core.broker.handleOf([...core.broker.allJobs()][0]);
    worker.work(P.WORK_DATA, slow, 'part');
    await settle();
    // The wake-up went out when the job was queued, before its JOB_CREATED; what follows waits.
    expect(client.take()).toEqual([{ type: 'NOOP', args: [] }]);
    expect(joiner.take()).toEqual([]);
    commit();
    await settle();
    const fast = core.broker.handleOf([...core.broker.allJobs()][1]);
    expect(client.take()).toEqual([
      { type: 'JOB_CREATED', args: [slow] },
      { type: 'JOB_CREATED', args: [fast] },
    ]);
    expect(joiner.take()).toEqual([
      { type: 'JOB_CREATED', args: [slow] },
      { type: 'WORK_DATA', args: [slow, 'part'] },
    ]);
    // Once accepted, a joiner gets its JOB_CREATED at once.
    core.peer().submitted('f', 'slow', 'a');
  });

  test('a refused accept answers ERROR QUEUE_ERROR to every submitter in place of JOB_CREATED, and cancels the job', async () => {
    const { recorder, core } = setUp();
    let refuse!: (error: Error) => void;
    recorder.acceptWith = () => new Promise<void>((_, reject) => (refuse = reject));
    const client = core.peer();
    client.submit('f', 'u', 'a');
    const joiner = core.peer();
    joiner.submit('f', 'u', 'a');
    const handle = core.broker.handleOf([...core.broker.allJobs()][0]);
    refuse(new Error('disk full'));
    await settle();
    const refused = [{ type: 'ERROR', args: ['QUEUE_ERROR', 'Job could not be stored'] }];
    expect([client.take(), joiner.take()]).toEqual([refused, refused]);
    expect(core.jobs()).toEqual([]);
    expect(core.status('f')).toEqual([0, 0, 0]);
    expect(recorder.events.slice(1)).toEqual([`joined ${handle} fg`, `ended ${handle} cancelled 0/0`]);
    expect(core.warnings).toEqual([`job ${handle} was not accepted: Error: disk full`]);
  });

  test('restore puts stored background jobs back: queued or delayed, coalesced, no JOB_CREATED, no accepted, ended as any job', () => {
    jest.useFakeTimers({ now: 1_900_000_000_000 });
    const { recorder, core } = setUp();
    core.broker.setMaxQueue('f', [1, 1, 1]);
    const first = core.broker.restore({ functionName: 'f', unique: 'a', data: 'x', priority: Priority.LOW });
    const second = core.broker.restore({ functionName: 'f', unique: 'b', data: 'y', priority: Priority.HIGH });
    expect(core.broker.restore({ functionName: 'f', unique: 'a', data: 'other', priority: Priority.HIGH })).toBe(first);
    const later = core.broker.restore({ functionName: 'f', unique: '', data: 'z', priority: Priority.NORMAL, runAt: Date.now() + 1000 });
    expect(() => core.broker.restore({ functionName: 'f', unique: 'u'.repeat(65), data: '', priority: Priority.NORMAL })).toThrow(
      RangeError,
    );
    expect(core.waiting('f')).toEqual([1, 1, 1]);
    const worker = core.worker('f');
    expect(worker.grabbed()).toEqual([second, 'f', 'y']);
    expect(worker.grabbed()).toEqual([first, 'f', 'x']);
    worker.grab();
    expect(worker.expectOne(P.NO_JOB)).toEqual([]);
    jest.advanceTimersByTime(1000);
    expect(worker.grabbed()).toEqual([later, 'f', 'z']);
    worker.end(P.WORK_COMPLETE, later, 'done');
    expect(recorder.events.filter((event) => !event.startsWith('started'))).toEqual([`ended ${later} complete done 0/0`]);
  });

  test('close ends nothing: queued jobs stay with a durable store', () => {
    const { recorder, core } = setUp();
    core.peer().submitted('f', '', 'x', { background: true });
    core.broker.close();
    expect(recorder.events).toHaveLength(1);
  });

  test('a hook that throws is reported and changes nothing; an accepted hook that throws refuses the job', async () => {
    const warnings: string[] = [];
    const core = new Core({
      warn: (message) => warnings.push(message),
      lifecycle: {
        accepted: (job) => {
          if (job.unique === 'refused') throw new Error('no store');
        },
        started: () => {
          throw new Error('observer bug');
        },
      },
    });
    const client = core.peer();
    const handle = client.submitted('f', '', 'x');
    const worker = core.worker('f');
    worker.grabbed();
    worker.end(P.WORK_COMPLETE, handle, 'r');
    expect(client.take()).toEqual([{ type: 'WORK_COMPLETE', args: [handle, 'r'] }]);
    expect(warnings).toEqual([expect.stringContaining('job lifecycle hook started threw: Error: observer bug')]);
    client.submit('f', 'refused', 'x');
    await settle();
    expect(client.take()).toEqual([{ type: 'ERROR', args: ['QUEUE_ERROR', 'Job could not be stored'] }]);
    expect(core.jobs()).toEqual([]);
  });

  test('combineLifecycles calls each in order; JOB_CREATED waits for every accepted promise', async () => {
    const calls: string[] = [];
    const releases: (() => void)[] = [];
    const observer = (name: string): JobLifecycle => ({
      accepted: () => {
        calls.push(`${name} accepted`);
        return new Promise<void>((resolve) => releases.push(resolve));
      },
      ended: (_job, end) => void calls.push(`${name} ended ${end.outcome.kind}`),
    });
    const core = new Core({ lifecycle: combineLifecycles(observer('store'), observer('metrics'), {}) });
    const client = core.peer();
    client.submit('f', '', 'x', { background: true });
    releases[0]();
    await settle();
    expect(client.take()).toEqual([]);
    releases[1]();
    await settle();
    const [handle] = client.expectOne(P.JOB_CREATED);
    core.broker.cancel(handle);
    expect(calls).toEqual(['store accepted', 'metrics accepted', 'store ended cancelled', 'metrics ended cancelled']);
  });
});
