import { Priority } from '../../../lib/job-server/job.js';
import type { ReservedFunctions } from '../../../lib/job-server/reserved-functions.js';
import { PacketType } from '../../../lib/protocol/packet-types.js';
import { sealEnvelope } from '../../../lib/protocol/envelope.js';
import { decodeResultReply, encodeResultRequest, type ResultRequest } from '../../../lib/protocol/result-fetch.js';
import type { FakePeer } from './support/fake-peer.js';
import { resultsCore } from './support/results-core.js';

const P = PacketType;

/**
 * A machine-form fetch: returns the fetch's handle (from its JOB_CREATED, which comes first); the
 * packets after it stay with the peer for the test to take.
 */
function fetchMachine(reserved: ReservedFunctions, peer: FakePeer, id: string, request: ResultRequest = {}): string {
  return fetch(reserved, peer, 'gearman.result', encodeResultRequest(id, request).toString('latin1'));
}

function fetchPlain(reserved: ReservedFunctions, peer: FakePeer, id: string, wait = true): string {
  return fetch(reserved, peer, wait ? 'gearman.result' : 'gearman.result.nowait', id);
}

const heldBack = new WeakMap<FakePeer, { type: string; args: string[] }[]>();

function fetch(reserved: ReservedFunctions, peer: FakePeer, functionName: string, data: string): string {
  reserved.submit(peer, { functionName, unique: '', data, priority: Priority.NORMAL, background: false });
  const [created, ...rest] = peer.take();
  expect(created.type).toBe('JOB_CREATED');
  heldBack.set(peer, [...(heldBack.get(peer) ?? []), ...rest]);
  return created.args[0];
}

/** What reached the peer since its last fetch's JOB_CREATED, and since. */
function packetsOf(peer: FakePeer): { type: string; args: string[] }[] {
  const earlier = heldBack.get(peer) ?? [];
  heldBack.delete(peer);
  return [...earlier, ...peer.take()];
}

function only(peer: FakePeer, type: PacketType): string[] {
  const packets = packetsOf(peer);
  expect(packets.map((packet) => packet.type)).toEqual([P[type]]);
  return packets[0].args;
}

/** The record and payload of a machine-form WORK_COMPLETE. */
function reply(args: string[]) {
  const { record, payload } = decodeResultReply(Buffer.from(args[1], 'latin1'));
  return { record, payload: payload.toString('latin1') };
}

describe('JobResults: what the job server keeps of background jobs', () => {
  test('a background job: queued, running with progress, then kept with its result, parts and times', () => {
    const { core, results } = resultsCore();
    const client = core.peer();
    const handle = client.submitted('resize', 'img-1', 'data', { background: true });
    expect(results.stateOf(handle)).toMatchObject({ kind: 'live', running: false, unique: 'img-1' });
    const worker = core.worker('resize');
    worker.grabbed();
    worker.work(P.WORK_STATUS, handle, '1', '2');
    worker.work(P.WORK_DATA, handle, 'part one');
    expect(results.stateOf('img-1')).toMatchObject({ kind: 'live', running: true, numerator: 1, denominator: 2 });
    worker.end(P.WORK_COMPLETE, handle, 'thumbnail');
    const state = results.stateOf(handle);
    expect(state).toMatchObject({
      kind: 'stored',
      result: { handle, unique: 'img-1', functionName: 'resize', outcome: 'complete', numerator: 1, denominator: 2 },
    });
    if (state.kind !== 'stored') throw new Error('not stored');
    expect(state.result.payload.toString()).toBe('thumbnail');
    expect(state.result.parts.map(String)).toEqual(['part one']);
    expect(state.result.endedAt).toBeGreaterThanOrEqual(state.result.createdAt);
    expect(results.stateOf('img-1')).toEqual(state);
  });

  test('failures are kept as failures (WORK_FAIL, WORK_EXCEPTION, cancelled); a foreground job leaves nothing', () => {
    const { core, results } = resultsCore();
    const client = core.peer(true);
    const worker = core.worker('f');
    const failed = client.submitted('f', 'a', '', { background: true });
    const thrown = client.submitted('f', 'b', '', { background: true });
    const cancelled = client.submitted('f', 'c', '', { background: true });
    const foreground = client.submitted('f', 'd', '');
    worker.grabbed();
    worker.end(P.WORK_FAIL, failed);
    worker.grabbed();
    worker.end(P.WORK_EXCEPTION, thrown, '{"code":"NO"}');
    core.broker.cancel(cancelled);
    worker.grabbed();
    worker.end(P.WORK_COMPLETE, foreground, 'for the caller only');
    expect(results.stateOf(failed)).toMatchObject({ kind: 'stored', result: { outcome: 'fail' } });
    expect(results.stateOf(thrown)).toMatchObject({
      kind: 'stored',
      result: { outcome: 'exception', payload: '{"code":"NO"}' },
    });
    expect(results.stateOf(cancelled)).toMatchObject({ kind: 'stored', result: { outcome: 'fail' } });
    expect(results.stateOf(foreground)).toEqual({ kind: 'unknown', reason: 'not-found' });
  });

  test('a requeued job starts over: the parts of its lost run are not kept', () => {
    const { core, results } = resultsCore();
    const handle = core.peer().submitted('f', 'u', '', { background: true });
    const lost = core.worker('f');
    lost.grabbed();
    lost.work(P.WORK_DATA, handle, 'from the lost run');
    lost.disconnect();
    const worker = core.worker('f');
    worker.grabbed();
    worker.work(P.WORK_DATA, handle, 'from the run that ended');
    worker.end(P.WORK_COMPLETE, handle, 'ok');
    const state = results.stateOf(handle);
    expect(state.kind === 'stored' && state.result.parts.map(String)).toEqual(['from the run that ended']);
  });

  test('retention drops the oldest, and the id then reads as expired', () => {
    const { core, results } = resultsCore({ maxCount: 1 });
    const client = core.peer();
    const worker = core.worker('f');
    const first = client.submitted('f', 'one', '', { background: true });
    const second = client.submitted('f', 'two', '', { background: true });
    for (const handle of [first, second]) {
      worker.grabbed();
      worker.end(P.WORK_COMPLETE, handle, 'x');
    }
    expect(results.stateOf(first)).toEqual({ kind: 'unknown', reason: 'expired' });
    expect(results.stateOf('one')).toEqual({ kind: 'unknown', reason: 'expired' });
    expect(results.stateOf(second).kind).toBe('stored');
    results.close();
  });

  test('a result over maxResultBytes is not kept, and says so', () => {
    const { core, results } = resultsCore({ maxResultBytes: 10 });
    const handle = core.peer().submitted('f', 'u', '', { background: true });
    const worker = core.worker('f');
    worker.grabbed();
    worker.work(P.WORK_DATA, handle, '123456');
    worker.end(P.WORK_COMPLETE, handle, '123456');
    expect(results.stateOf(handle)).toMatchObject({ kind: 'stored', result: { dropped: true, payload: Buffer.alloc(0), parts: [] } });
  });
});

describe('a retried job (the Nest retries: each attempt queued before the failed one ends)', () => {
  /** The next attempt as ServerGearman submits it: unique `<first>#<n>`, the first job named in the envelope. */
  const attempt = (origin: { unique: string; handle: string }, n: number) =>
    sealEnvelope({ retry: { attempts: 3, attempt: n, origin } }, Buffer.from('payload')).toString('latin1');

  test('its first handle and unique id lead through every attempt to the last one, and its outcome', () => {
    const { core, results, reserved } = resultsCore();
    const client = core.peer();
    const asker = core.peer();
    const first = client.submitted('mail', 'm-1', 'payload', { background: true });
    const origin = { unique: 'm-1', handle: first };
    const worker = core.worker('mail');
    worker.grabbed();
    const waiting = fetchMachine(reserved, asker, first, { wait: true });
    const second = client.submitted('mail', 'm-1#2', attempt(origin, 2), { background: true });
    worker.end(P.WORK_FAIL, first);
    // The first attempt failed, but the job goes on: it reads as its second attempt, queued.
    expect(results.stateOf(first)).toMatchObject({ kind: 'live', handle: second, running: false });
    expect(results.stateOf('m-1')).toMatchObject({ kind: 'live', handle: second });
    expect(packetsOf(asker)).toEqual([]);
    worker.grabbed();
    const third = client.submitted('mail', 'm-1#3', attempt(origin, 3), { background: true });
    worker.end(P.WORK_FAIL, second);
    worker.grabbed();
    worker.end(P.WORK_COMPLETE, third, 'sent');
    expect(results.stateOf(first)).toMatchObject({
      kind: 'stored',
      result: { handle: first, unique: 'm-1', outcome: 'complete', payload: 'sent' },
    });
    expect(results.stateOf('m-1')).toMatchObject({ kind: 'stored', result: { outcome: 'complete' } });
    const [done] = packetsOf(asker);
    expect(done.args[0]).toBe(waiting);
    expect(reply(done.args)).toMatchObject({ record: { state: 'completed' }, payload: 'sent' });
  });

  test("out of attempts: the last attempt's failure is the job's", () => {
    const { core, results } = resultsCore();
    const client = core.peer();
    const first = client.submitted('mail', 'm-2', 'payload', { background: true });
    const worker = core.worker('mail');
    worker.grabbed();
    const second = client.submitted('mail', 'm-2#2', attempt({ unique: 'm-2', handle: first }, 2), { background: true });
    worker.end(P.WORK_FAIL, first);
    worker.grabbed();
    worker.end(P.WORK_EXCEPTION, second, '{"code":"BOUNCED"}');
    expect(results.stateOf('m-2')).toMatchObject({
      kind: 'stored',
      result: { outcome: 'exception', payload: '{"code":"BOUNCED"}' },
    });
  });
});

describe('gearman.result, machine form', () => {
  test('answers at once with the state: queued, running, then the ended job with its parts before its record', () => {
    const { core, reserved } = resultsCore();
    const asker = core.peer();
    const handle = core.peer().submitted('f', 'u-1', '', { background: true });
    fetchMachine(reserved, asker, handle);
    const queued = reply(only(asker, P.WORK_COMPLETE));
    expect(queued.record).toMatchObject({ state: 'queued', handle, unique: 'u-1', function: 'f' });
    const worker = core.worker('f');
    worker.grabbed();
    worker.work(P.WORK_STATUS, handle, '3', '10');
    fetchMachine(reserved, asker, 'u-1');
    expect(reply(only(asker, P.WORK_COMPLETE)).record).toMatchObject({ state: 'running', numerator: 3, denominator: 10 });
    worker.work(P.WORK_DATA, handle, 'p1');
    worker.work(P.WORK_DATA, handle, 'p2');
    worker.end(P.WORK_COMPLETE, handle, 'the result');
    const fetched = fetchMachine(reserved, asker, handle);
    const packets = packetsOf(asker);
    expect(packets.map((packet) => packet.type)).toEqual(['WORK_DATA', 'WORK_DATA', 'WORK_COMPLETE']);
    expect(packets.slice(0, 2).map((packet) => packet.args)).toEqual([
      [fetched, 'p1'],
      [fetched, 'p2'],
    ]);
    const done = reply(packets[2].args);
    expect(done.record).toMatchObject({ state: 'completed', parts: 2, numerator: 3, denominator: 10, endedAt: expect.any(Number) });
    expect(done.payload).toBe('the result');
  });

  test('wait holds the answer until the job ends; follow relays its updates meanwhile', () => {
    const { core, reserved } = resultsCore();
    const asker = core.peer();
    const handle = core.peer().submitted('f', 'u', '', { background: true });
    const worker = core.worker('f');
    worker.grabbed();
    worker.work(P.WORK_DATA, handle, 'before');
    const waiting = fetchMachine(reserved, asker, handle, { wait: true });
    const following = fetchMachine(reserved, asker, handle, { wait: true, follow: true });
    expect(packetsOf(asker)).toEqual([{ type: 'WORK_DATA', args: [following, 'before'] }]);
    worker.work(P.WORK_STATUS, handle, '1', '2');
    worker.work(P.WORK_WARNING, handle, 'careful');
    worker.work(P.WORK_DATA, handle, 'after');
    expect(packetsOf(asker)).toEqual([
      { type: 'WORK_STATUS', args: [following, '1', '2'] },
      { type: 'WORK_WARNING', args: [following, 'careful'] },
      { type: 'WORK_DATA', args: [following, 'after'] },
    ]);
    worker.end(P.WORK_EXCEPTION, handle, '{"code":"NO"}');
    const packets = packetsOf(asker);
    // The waiter gets every part then its record; the follower only its record (it has the parts).
    expect(packets.map((packet) => `${packet.type} ${packet.args[0]}`)).toEqual([
      `WORK_DATA ${waiting}`,
      `WORK_DATA ${waiting}`,
      `WORK_COMPLETE ${waiting}`,
      `WORK_COMPLETE ${following}`,
    ]);
    for (const packet of [packets[2], packets[3]]) {
      expect(reply(packet.args)).toEqual({
        record: expect.objectContaining({ state: 'failed', failure: 'exception', parts: 2 }),
        payload: '{"code":"NO"}',
      });
    }
  });

  test('a wait past its timeoutMs answers with the state then', async () => {
    const { core, reserved } = resultsCore();
    const asker = core.peer();
    const handle = core.peer().submitted('f', 'u', '', { background: true });
    fetchMachine(reserved, asker, handle, { wait: true, timeoutMs: 20 });
    expect(packetsOf(asker)).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(reply(only(asker, P.WORK_COMPLETE)).record).toMatchObject({ state: 'queued' });
  });

  test('an unknown id: unknown at once, even when asked to wait', () => {
    const { core, reserved } = resultsCore();
    const asker = core.peer();
    fetchMachine(reserved, asker, 'H:test:99', { wait: true });
    expect(reply(only(asker, P.WORK_COMPLETE)).record).toEqual({ state: 'unknown', reason: 'not-found' });
  });

  test('a peer that leaves stops its waits', () => {
    const { core, reserved } = resultsCore();
    const asker = core.peer();
    const handle = core.peer().submitted('f', 'u', '', { background: true });
    fetchMachine(reserved, asker, handle, { wait: true, follow: true });
    reserved.peerGone(asker);
    const worker = core.worker('f');
    worker.grabbed();
    worker.work(P.WORK_DATA, handle, 'x');
    worker.end(P.WORK_COMPLETE, handle, 'y');
    expect(packetsOf(asker)).toEqual([]);
  });
});

describe('gearman.result, plain form (the gearman CLI, PHP, Perl)', () => {
  test('replays how the job ended: its parts, then its result, WORK_EXCEPTION or WORK_FAIL', () => {
    const { core, reserved } = resultsCore();
    const worker = core.worker('f');
    const client = core.peer();
    const completed = client.submitted('f', 'c', '', { background: true });
    const thrown = client.submitted('f', 'e', '', { background: true });
    worker.grabbed();
    worker.work(P.WORK_DATA, completed, 'part');
    worker.end(P.WORK_COMPLETE, completed, 'result');
    worker.grabbed();
    worker.end(P.WORK_EXCEPTION, thrown, 'why');
    const cli = core.peer(false);
    const fetched = fetchPlain(reserved, cli, completed);
    expect(packetsOf(cli)).toEqual([
      { type: 'WORK_DATA', args: [fetched, 'part'] },
      { type: 'WORK_COMPLETE', args: [fetched, 'result'] },
    ]);
    const plain = fetchPlain(reserved, cli, thrown);
    expect(packetsOf(cli)).toEqual([{ type: 'WORK_FAIL', args: [plain] }]);
    const php = core.peer(true);
    const withExceptions = fetchPlain(reserved, php, 'e');
    expect(packetsOf(php)).toEqual([{ type: 'WORK_EXCEPTION', args: [withExceptions, 'why'] }]);
  });

  test('waits for a running job, relaying where it is and what it sends', () => {
    const { core, reserved } = resultsCore();
    const handle = core.peer().submitted('f', 'u', '', { background: true });
    const worker = core.worker('f');
    worker.grabbed();
    worker.work(P.WORK_STATUS, handle, '1', '4');
    const cli = core.peer();
    const fetched = fetchPlain(reserved, cli, handle);
    expect(packetsOf(cli)).toEqual([{ type: 'WORK_STATUS', args: [fetched, '1', '4'] }]);
    worker.work(P.WORK_DATA, handle, 'live');
    worker.end(P.WORK_COMPLETE, handle, 'done');
    expect(packetsOf(cli)).toEqual([
      { type: 'WORK_DATA', args: [fetched, 'live'] },
      { type: 'WORK_COMPLETE', args: [fetched, 'done'] },
    ]);
  });

  test('fails with a one-line reason: UNKNOWN, EXPIRED, RUNNING, QUEUED, MALFORMED', () => {
    const { core, reserved } = resultsCore({ maxCount: 1 });
    const client = core.peer();
    const worker = core.worker('f');
    const gone = client.submitted('f', 'gone', '', { background: true });
    const kept = client.submitted('f', 'kept', '', { background: true });
    for (const handle of [gone, kept]) {
      worker.grabbed();
      worker.end(P.WORK_COMPLETE, handle, '');
    }
    const queued = client.submitted('f', 'q', '', { background: true });
    const reasons = (id: string, wait = false) => {
      const cli = core.peer(true);
      const fetched = fetchPlain(reserved, cli, id, wait);
      const [warning, exception] = packetsOf(cli);
      expect(warning).toEqual({ type: 'WORK_WARNING', args: [fetched, exception.args[1]] });
      expect(exception.type).toBe('WORK_EXCEPTION');
      return exception.args[1];
    };
    expect(reasons('H:test:404')).toBe(
      'UNKNOWN H:test:404: no job or kept result by this handle or unique id here (foreground jobs keep none)\n',
    );
    expect(reasons(gone)).toMatch(new RegExp(`^EXPIRED ${gone}: `));
    expect(reasons(queued)).toBe(`QUEUED ${queued}: still queued\n`);
    worker.grabbed();
    worker.work(P.WORK_STATUS, queued, '2', '5');
    expect(reasons('q')).toBe('RUNNING q: still running (2/5)\n');
    expect(reasons('x'.repeat(65), true)).toMatch(/^MALFORMED: /);
    // Without the exceptions option the reason comes as WORK_WARNING, then WORK_FAIL.
    const cli = core.peer(false);
    const fetched = fetchPlain(reserved, cli, 'nothing');
    expect(packetsOf(cli).map((packet) => packet.type)).toEqual(['WORK_WARNING', 'WORK_FAIL']);
    expect(fetched).toMatch(/^H:test:R\d+$/);
  });

  test('a background submit to gearman.result is refused', () => {
    const { core, reserved } = resultsCore();
    const client = core.peer();
    reserved.submit(client, { functionName: 'gearman.result', unique: '', data: 'H:x:1', priority: Priority.NORMAL, background: true });
    expect(client.expectOne(P.ERROR)).toEqual(['RESERVED_FUNCTION', 'gearman.result takes foreground submits only']);
  });
});
