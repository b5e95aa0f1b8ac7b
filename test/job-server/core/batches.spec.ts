import { Priority } from '../../../lib/job-server/job.js';
import type { JobListener } from '../../../lib/job-server/job-results.js';
import { encodeBatchRequest, type BatchRequest } from '../../../lib/protocol/batch.js';
import { sealEnvelope } from '../../../lib/protocol/envelope.js';
import { PacketType } from '../../../lib/protocol/packet-types.js';
import type { FakePeer } from './support/fake-peer.js';
import { resultsCore } from './support/results-core.js';

const P = PacketType;

function setUp() {
  const { core, results, batches, reserved } = resultsCore();
  /** Submits a batch as a client does (a background job of gearman.batch); returns its handle. */
  const submitBatch = (
    client: FakePeer,
    request: Omit<BatchRequest, 'failFast'> & { failFast?: boolean },
    items: string[],
    unique = 'b1',
  ) => {
    const data = encodeBatchRequest(
      { failFast: true, ...request },
      items.map((item) => Buffer.from(item)),
    ).toString('latin1');
    reserved.submit(client, { functionName: 'gearman.batch', unique, data, priority: Priority.NORMAL, background: true });
    return client.expectOne(P.JOB_CREATED)[0];
  };
  return { core, results, batches, reserved, submitBatch };
}

/** Runs the next job a worker gets: [handle, function, data] of its JOB_ASSIGN. */
function take(worker: FakePeer): string[] {
  return worker.grabbed();
}

describe('BatchCoordinator: batches coordinated by the job server', () => {
  test('items become background jobs <batch>/<i>; when all ended, the gather job gets the ordered outcomes and its result is the batch', () => {
    const { core, results, submitBatch } = setUp();
    const client = core.peer();
    const batch = submitBatch(client, { function: 'square', gather: 'sum' }, ['1', '2', '3']);
    expect(batch).toBe('H:test:1'); // a handle as a job's, from the same counter
    expect(core.status('square')).toEqual([3, 0, 0]);
    expect([...core.broker.allJobs()].map((job) => job.unique)).toEqual(['b1/0', 'b1/1', 'b1/2']);
    const progress: string[] = [];
    const listener: JobListener = {
      update: (u) => u.kind === 'status' && progress.push(`${u.numerator}/${u.denominator}`),
      ended: () => progress.push('ended'),
    };
    results.listen(batch, listener);
    const worker = core.worker('square', 'sum');
    // Out of order: the outcomes are gathered by index all the same.
    const jobs = [take(worker), take(worker), take(worker)];
    for (const [handle, , data] of [jobs[2], jobs[0], jobs[1]]) worker.end(P.WORK_COMPLETE, handle, String(Number(data) ** 2));
    expect(results.stateOf(batch)).toMatchObject({ kind: 'live', running: true, batch: { total: 3, ended: 3, failed: 0 } });
    const [gatherHandle, gatherFunction, gathered] = take(worker);
    expect(gatherFunction).toBe('sum');
    expect(JSON.parse(gathered)).toEqual([
      { index: 0, value: 1 },
      { index: 1, value: 4 },
      { index: 2, value: 9 },
    ]);
    worker.end(P.WORK_COMPLETE, gatherHandle, '14');
    expect(progress).toEqual(['1/3', '2/3', '3/3', 'ended']);
    expect(results.stateOf('b1')).toMatchObject({
      kind: 'stored',
      result: {
        handle: batch,
        outcome: 'complete',
        payload: '14',
        numerator: 3,
        denominator: 3,
        batch: { total: 3, ended: 3, failed: 0 },
      },
    });
    // The items' own outcomes are the batch's to keep: none is stored on its own.
    expect(results.stored.count).toBe(1);
  });

  test('without a gather job the result is the ordered outcomes; zero items end at once', () => {
    const { core, results, submitBatch } = setUp();
    const client = core.peer();
    const empty = submitBatch(client, { function: 'f' }, [], 'empty');
    expect(results.stateOf(empty)).toMatchObject({ kind: 'stored', result: { outcome: 'complete', payload: '[]' } });
    const batch = submitBatch(client, { function: 'f', failFast: false }, ['a', 'b']);
    const worker = core.worker('f');
    const [first, second] = [take(worker), take(worker)];
    worker.end(P.WORK_COMPLETE, first[0], '"A"');
    worker.end(P.WORK_EXCEPTION, second[0], '{"code":"NO"}');
    const state = results.stateOf(batch);
    expect(state.kind === 'stored' && JSON.parse(state.result.payload.toString())).toEqual([
      { index: 0, value: 'A' },
      { index: 1, error: { code: 'NO' } },
    ]);
    expect(state).toMatchObject({ result: { batch: { total: 2, ended: 2, failed: 1 } } });
  });

  test('concurrency: at most that many items queued or running at once', () => {
    const { core, submitBatch } = setUp();
    submitBatch(core.peer(), { function: 'f', concurrency: 2 }, ['1', '2', '3', '4', '5']);
    expect(core.status('f')).toEqual([2, 0, 0]);
    const worker = core.worker('f');
    const [handle] = take(worker);
    expect(core.status('f')).toEqual([2, 1, 1]);
    worker.end(P.WORK_COMPLETE, handle, '');
    expect(core.status('f')).toEqual([2, 0, 1]);
  });

  test('failFast: the first failure fails the batch with its error, its queued items are cancelled, a running one ends unused', () => {
    const { core, results, submitBatch } = setUp();
    const batch = submitBatch(core.peer(), { function: 'f', gather: 'g' }, ['1', '2', '3', '4']);
    const worker = core.worker('f');
    const running = take(worker);
    const failing = take(worker);
    worker.end(P.WORK_EXCEPTION, failing[0], '{"code":"BAD"}');
    expect(results.stateOf(batch)).toMatchObject({
      kind: 'stored',
      result: { outcome: 'exception', payload: '{"code":"BAD"}' },
    });
    expect(core.status('f')).toEqual([1, 1, 1]); // the running one only: the two queued were cancelled
    worker.end(P.WORK_COMPLETE, running[0], 'late');
    expect(core.status('g')).toBeUndefined(); // no gather job
    expect(results.stateOf(batch)).toMatchObject({ result: { outcome: 'exception' } });
    // Only the batch's outcome is kept: none of its items', the cancelled and the late one included.
    expect([...results.stored.values()].map((kept) => kept.handle)).toEqual([batch]);
  });

  test('a worker that dies mid-item: the item goes back to its queue and the batch completes', () => {
    const { core, results, submitBatch } = setUp();
    const batch = submitBatch(core.peer(), { function: 'f' }, ['1', '2']);
    const doomed = core.worker('f');
    take(doomed);
    take(doomed);
    doomed.disconnect();
    const worker = core.worker('f');
    for (let i = 0; i < 2; i++) worker.end(P.WORK_COMPLETE, take(worker)[0], 'ok');
    expect(results.stateOf(batch)).toMatchObject({ kind: 'stored', result: { outcome: 'complete', batch: { ended: 2, failed: 0 } } });
  });

  test("an item a Nest worker retries: its next attempt takes its place, the failure it replaces is not the item's", () => {
    const { core, results, submitBatch } = setUp();
    const client = core.peer();
    const batch = submitBatch(client, { function: 'f', gather: 'g' }, ['1', '2']);
    const worker = core.worker('f', 'g');
    const [first, , data] = take(worker);
    // What ServerGearman does: queue attempt 2 (unique <item>#2, the first attempt named in its envelope), then WORK_FAIL.
    const retry = (n: number) =>
      sealEnvelope({ retry: { attempts: 3, attempt: n, origin: { unique: 'b1/0', handle: first } } }, Buffer.from(data)).toString('latin1');
    client.submitted('f', 'b1/0#2', retry(2), { background: true });
    worker.end(P.WORK_FAIL, first);
    expect(results.stateOf(batch)).toMatchObject({ kind: 'live', batch: { ended: 0, failed: 0 } });
    const [other] = take(worker);
    worker.end(P.WORK_COMPLETE, other, '"two"');
    const [second] = take(worker);
    client.submitted('f', 'b1/0#3', retry(3), { background: true });
    worker.end(P.WORK_FAIL, second);
    const [third] = take(worker);
    worker.end(P.WORK_COMPLETE, third, '"one"');
    const [gather, , gathered] = take(worker);
    expect(JSON.parse(gathered)).toEqual([
      { index: 0, value: 'one' },
      { index: 1, value: 'two' },
    ]);
    worker.end(P.WORK_COMPLETE, gather, 'done');
    expect(results.stateOf(batch)).toMatchObject({ kind: 'stored', result: { outcome: 'complete', batch: { ended: 2, failed: 0 } } });
    // The attempts were the batch's: none is stored on its own.
    expect(results.stored.count).toBe(1);
  });

  test('cancel: the batch fails and its queued items are cancelled; by handle or unique id, once', () => {
    const { core, results, batches, submitBatch } = setUp();
    const batch = submitBatch(core.peer(), { function: 'f' }, ['1', '2', '3']);
    const worker = core.worker('f');
    const running = take(worker);
    expect(batches.cancel('b1')).toBe(true);
    expect(batches.cancel(batch)).toBe(false);
    expect(core.status('f')).toEqual([1, 1, 1]);
    worker.end(P.WORK_COMPLETE, running[0], '');
    expect(results.stateOf(batch)).toMatchObject({ kind: 'stored', result: { outcome: 'fail' } });
  });

  test('the same batch submitted again while it runs is the same batch', () => {
    const { core, submitBatch } = setUp();
    const client = core.peer();
    const first = submitBatch(client, { function: 'f' }, ['1']);
    expect(submitBatch(client, { function: 'f' }, ['1'])).toBe(first);
    expect(core.status('f')).toEqual([1, 0, 0]);
  });

  test('a gather function nobody serves: the gather job waits like any job, visible in status', () => {
    const { core, results, submitBatch } = setUp();
    const batch = submitBatch(core.peer(), { function: 'f', gather: 'nobody' }, ['1']);
    const worker = core.worker('f');
    worker.end(P.WORK_COMPLETE, take(worker)[0], '');
    expect(core.status('nobody')).toEqual([1, 0, 0]);
    expect(results.stateOf(batch)).toMatchObject({ kind: 'live', batch: { ended: 1, total: 1 } });
  });

  test('a malformed batch is refused with ERROR INVALID_BATCH; a foreground submit with RESERVED_FUNCTION', () => {
    const { core, reserved } = setUp();
    const client = core.peer();
    reserved.submit(client, {
      functionName: 'gearman.batch',
      unique: '',
      data: 'not a batch',
      priority: Priority.NORMAL,
      background: true,
    });
    expect(client.expectOne(P.ERROR)[0]).toBe('INVALID_BATCH');
    reserved.submit(client, { functionName: 'gearman.batch', unique: '', data: '', priority: Priority.NORMAL, background: false });
    expect(client.expectOne(P.ERROR)[0]).toBe('RESERVED_FUNCTION');
  });

  test('an item refused by maxqueue counts as failed', () => {
    const { core, results, submitBatch } = setUp();
    core.broker.createFunction('f');
    core.broker.setMaxQueue('f', [1, 1, 1]);
    const batch = submitBatch(core.peer(), { function: 'f', failFast: false }, ['1', '2']);
    const worker = core.worker('f');
    worker.end(P.WORK_COMPLETE, take(worker)[0], '1');
    const state = results.stateOf(batch);
    expect(state.kind === 'stored' && JSON.parse(state.result.payload.toString())).toEqual([
      { index: 0, value: 1 },
      { index: 1, error: { code: 'JOB_FAILED', message: 'The queue of f is full' } },
    ]);
  });
});
