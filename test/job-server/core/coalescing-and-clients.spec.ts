import { PacketType } from '../../../lib/protocol/index.js';
import { Core } from './support/fake-peer.js';

const P = PacketType;

describe('JobBroker without sockets: coalescing, waiting clients, results', () => {
  test('an empty unique id never coalesces; the same unique id under another function is another job', () => {
    const core = new Core();
    const client = core.peer();
    const a = client.submitted('e', '', 'same', { background: true });
    const b = client.submitted('e', '', 'same', { background: true });
    expect(a).not.toBe(b);
    const c = client.submitted('e', 'k', 'x', { background: true });
    const d = client.submitted('e2', 'k', 'x', { background: true });
    expect(c).not.toBe(d);
    expect(core.status('e')).toEqual([3, 0, 0]);
  });

  test('unique "-" coalesces on the payload bytes; "-" with an empty payload never does', () => {
    const core = new Core();
    const client = core.peer();
    const a = client.submitted('dash', '-', 'payload\xff', { background: true });
    expect(client.submitted('dash', '-', 'payload\xff', { background: true })).toBe(a);
    expect(client.submitted('dash', '-', 'payload', { background: true })).not.toBe(a);
    const empty = client.submitted('dash', '-', '', { background: true });
    expect(client.submitted('dash', '-', '', { background: true })).not.toBe(empty);
    expect(core.status('dash')).toEqual([4, 0, 0]);
  });

  test('an explicit unique id coalesces whatever the payload and priority; every foreground submitter gets every WORK_*', () => {
    const core = new Core();
    const [first, second] = [core.peer(), core.peer()];
    const handle = first.submitted('co', 'same', 'payload-1');
    expect(second.submitted('co', 'same', 'payload-2')).toBe(handle);
    expect(second.submitted('co', 'same', 'payload-3', { background: true })).toBe(handle);
    expect(core.status('co')).toEqual([1, 0, 0]);
    expect(core.broker.findByUnique('same')?.clients).toHaveLength(2);
    const worker = core.worker('co');
    worker.grab(P.GRAB_JOB_UNIQ);
    expect(worker.expectOne(P.JOB_ASSIGN_UNIQ)).toEqual([handle, 'co', 'same', 'payload-1']);
    const late = core.peer();
    expect(late.submitted('co', 'same', 'x')).toBe(handle);
    worker.work(P.WORK_DATA, handle, 'd');
    worker.work(P.WORK_WARNING, handle, 'w');
    worker.work(P.WORK_STATUS, handle, '1', '2');
    worker.end(P.WORK_COMPLETE, handle, 'done');
    const expected = [
      { type: 'WORK_DATA', args: [handle, 'd'] },
      { type: 'WORK_WARNING', args: [handle, 'w'] },
      { type: 'WORK_STATUS', args: [handle, '1', '2'] },
      { type: 'WORK_COMPLETE', args: [handle, 'done'] },
    ];
    expect([first.take(), second.take(), late.take()]).toEqual([expected, expected, expected]);
    expect(worker.take()).toEqual([]);
    expect(core.status('co')).toEqual([0, 0, 1]);
    expect(core.broker.findByHandle(handle)).toBeUndefined();
  });

  test('WORK_STATUS progress is kept as gearmand stores it and relayed as sent', () => {
    const core = new Core();
    const client = core.peer();
    const handle = client.submitted('p', '', 'x');
    const worker = core.worker('p');
    worker.grabbed();
    worker.work(P.WORK_STATUS, handle, '-1', '99999999999');
    expect(client.expectOne(P.WORK_STATUS)).toEqual([handle, '-1', '99999999999']);
    const run = core.broker.findByHandle(handle)!.run!;
    expect([run.numerator, run.denominator]).toEqual([4294967295, 1410065407]);
  });

  test('WORK_* for a job the worker does not hold: ERROR JOB_NOT_FOUND with gearmand’s text for each', () => {
    const core = new Core();
    const handle = core.peer().submitted('owned', '', 'x', { background: true });
    const holder = core.worker('owned');
    holder.grabbed();
    const stranger = core.worker('owned');
    const refusals: [() => void, string][] = [
      [() => stranger.work(P.WORK_DATA, handle, 'x'), 'Job does not exist on server'],
      [() => stranger.work(P.WORK_WARNING, handle, 'x'), 'Job does not exist on server'],
      [() => stranger.work(P.WORK_STATUS, handle, '1', '2'), 'Job given in work result not found'],
      [() => stranger.end(P.WORK_COMPLETE, handle, 'x'), 'Job given in work result not found'],
      [() => stranger.end(P.WORK_FAIL, 'H:nowhere:1'), 'Job given in work result not found'],
      [() => stranger.end(P.WORK_EXCEPTION, handle, 'x'), 'An exception was received for a job that does not exist'],
    ];
    for (const [send, text] of refusals) {
      send();
      expect(stranger.expectOne(P.ERROR)).toEqual(['JOB_NOT_FOUND', text]);
    }
    expect(core.status('owned')).toEqual([1, 1, 2]);
  });

  test('WORK_EXCEPTION reaches clients with the exceptions option; the others get WORK_FAIL with the handle alone', () => {
    const core = new Core();
    const plain = core.peer();
    const wants = core.peer(true);
    const handle = plain.submitted('boom', 'k', 'x');
    wants.submitted('boom', 'k', 'x');
    const worker = core.worker('boom');
    worker.grabbed();
    worker.end(P.WORK_EXCEPTION, handle, 'it broke');
    expect(plain.take()).toEqual([{ type: 'WORK_FAIL', args: [handle] }]);
    expect(wants.take()).toEqual([{ type: 'WORK_EXCEPTION', args: [handle, 'it broke'] }]);
    expect(core.status('boom')).toEqual([0, 0, 1]);
  });

  test('WORK_FAIL ends the job and is relayed as sent; a failed job is not retried', () => {
    const core = new Core();
    const client = core.peer();
    const handle = client.submitted('fails', '', 'x');
    const worker = core.worker('fails');
    worker.grabbed();
    worker.broker.workEnd(worker.state, P.WORK_FAIL, handle, [Buffer.from(`${handle}\0junk`, 'latin1')]);
    expect(client.take()).toEqual([{ type: 'WORK_FAIL', args: [`${handle}\0junk`] }]);
    worker.grab();
    expect(worker.expectOne(P.NO_JOB)).toEqual([]);
  });

  test('a client that disconnects: its queued foreground job is dropped, a background one and a shared one stay', () => {
    const core = new Core();
    const client = core.peer();
    const other = core.peer();
    client.submitted('gone', '', 'fg');
    const shared = client.submitted('gone', 'shared', 'fg2');
    expect(other.submitted('gone', 'shared', 'fg2')).toBe(shared);
    client.submitted('gone', '', 'bg', { background: true });
    expect(core.status('gone')).toEqual([3, 0, 0]);
    client.disconnect();
    expect(core.status('gone')).toEqual([2, 0, 0]);
    expect(core.broker.findByHandle(shared)?.clients).toHaveLength(1);
    const worker = core.worker('gone');
    expect(worker.grabbed()[2]).toBe('fg2');
    expect(worker.grabbed()[2]).toBe('bg');
    worker.grab();
    expect(worker.expectOne(P.NO_JOB)).toEqual([]);
  });

  test('a client that disconnects while its job runs: the job finishes, the result goes nowhere', () => {
    const core = new Core();
    const client = core.peer();
    const handle = client.submitted('orphan', '', 'x');
    const worker = core.worker('orphan');
    worker.grabbed();
    client.disconnect();
    expect(core.status('orphan')).toEqual([1, 1, 1]);
    worker.work(P.WORK_DATA, handle, 'part');
    worker.end(P.WORK_COMPLETE, handle, 'late');
    expect(client.take()).toEqual([]);
    expect(worker.take()).toEqual([]);
    expect(core.status('orphan')).toEqual([0, 0, 1]);
  });

  test('maxqueue: a submit past the limit gets ERROR QUEUE_ERROR; coalescing submits are not counted', () => {
    const core = new Core();
    const client = core.peer();
    client.submitted('capped', 'one', 'x', { background: true });
    core.broker.setMaxQueue('capped', [1, 1, 1]);
    expect(client.submitted('capped', 'one', 'x', { background: true })).toMatch(/^H:test:\d+$/);
    client.submitted('capped', 'one', 'x');
    client.submit('capped', 'two', 'x', { background: true });
    expect(client.take()).toEqual([{ type: 'ERROR', args: ['QUEUE_ERROR', 'Job queue is full'] }]);
    expect(core.status('capped')).toEqual([1, 0, 0]);
    core.broker.setMaxQueue('capped', [0, 0, 0]);
    client.submitted('capped', 'two', 'x', { background: true });
    expect(core.status('capped')).toEqual([2, 0, 0]);
    core.broker.setMaxQueue('unknown-function', [3, 3, 3]);
    expect(core.status('unknown-function')).toBeUndefined();
  });
});
