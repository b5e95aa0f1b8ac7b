import { jest } from '@jest/globals';
import { PacketType } from '../../../lib/protocol/index.js';
import { Core } from './support/fake-peer.js';

const P = PacketType;

describe('JobBroker without sockets: lost workers, retries, timers, cancel and drop', () => {
  beforeEach(() => jest.useFakeTimers({ now: new Date('2030-01-01T00:00:00Z') }));
  afterEach(() => jest.useRealTimers());

  test('a worker that disconnects: its jobs go back newest first, one retry each, progress reset, sleepers woken', () => {
    const core = new Core();
    const client = core.peer();
    const [first, second] = [client.submitted('flaky', '', '1'), client.submitted('flaky', '', '2')];
    const quitter = core.worker('flaky');
    quitter.grabbed();
    quitter.grabbed();
    quitter.work(P.WORK_STATUS, second, '1', '2');
    expect(client.take()).toEqual([{ type: 'WORK_STATUS', args: [second, '1', '2'] }]);
    const stayer = core.worker('flaky');
    stayer.broker.preSleep(stayer.state);
    quitter.disconnect();
    expect(stayer.take()).toEqual([{ type: 'NOOP', args: [] }]);
    expect(core.jobs()).toEqual([
      [first, 1, false, false],
      [second, 1, false, false],
    ]);
    expect(core.status('flaky')).toEqual([2, 0, 1]);
    expect(stayer.grabbed()[0]).toBe(second);
    expect(stayer.grabbed()[0]).toBe(first);
    expect(core.broker.findByHandle(second)!.run).toMatchObject({ numerator: 0, denominator: 0 });
    stayer.end(P.WORK_COMPLETE, first, 'ok');
    expect(client.take()).toEqual([{ type: 'WORK_COMPLETE', args: [first, 'ok'] }]);
  });

  test('jobRetries: jobs lost that many times fail, their clients get WORK_FAIL; background ones simply leave', () => {
    const core = new Core({ jobRetries: 2 });
    const client = core.peer();
    const background = client.submitted('twice', 'u', 'x', { background: true });
    const foreground = client.submitted('twice', 'v', 'y');
    const first = core.worker('twice');
    first.grabbed();
    first.grabbed();
    first.disconnect();
    expect(core.jobs()).toEqual([
      [background, 1, false, true],
      [foreground, 1, false, false],
    ]);
    expect(client.take()).toEqual([]);
    const second = core.worker('twice');
    expect(second.grabbed()[0]).toBe(foreground);
    expect(second.grabbed()[0]).toBe(background);
    second.disconnect();
    expect(client.take()).toEqual([{ type: 'WORK_FAIL', args: [foreground] }]);
    expect(core.jobs()).toEqual([]);
    expect(core.status('twice')).toEqual([0, 0, 0]);
    expect(core.warnings).toEqual([`job ${background} dropped after 2 attempts`, `job ${foreground} dropped after 2 attempts`]);
  });

  test('CANT_DO and RESET_ABILITIES while holding jobs requeue them; the worker then gets JOB_NOT_FOUND', () => {
    const core = new Core();
    const client = core.peer();
    const [first, second] = [client.submitted('held', '', '1'), client.submitted('held', '', '2')];
    const worker = core.worker('held', 'kept');
    worker.grabbed();
    worker.grabbed();
    worker.broker.cantDo(worker.state, 'held');
    expect(core.jobs()).toEqual([
      [first, 1, false, false],
      [second, 1, false, false],
    ]);
    worker.end(P.WORK_COMPLETE, first, 'late');
    expect(worker.expectOne(P.ERROR)).toEqual(['JOB_NOT_FOUND', 'Job given in work result not found']);
    const next = core.worker('held');
    expect(next.grabbed()[0]).toBe(second);
    next.broker.resetAbilities(next.state);
    next.work(P.WORK_DATA, second, 'late');
    expect(next.expectOne(P.ERROR)).toEqual(['JOB_NOT_FOUND', 'Job does not exist on server']);
    expect(core.jobs()).toEqual([
      [first, 1, false, false],
      [second, 2, false, false],
    ]);
  });

  test('CAN_DO_TIMEOUT: the job goes back when the timer expires (at least 1 s), and the slow worker’s WORK_* are refused', () => {
    const core = new Core();
    const client = core.peer();
    const handle = client.submitted('slow', '', 'x');
    const slow = core.peer();
    slow.broker.canDo(slow.state, 'slow', 300);
    expect(slow.grabbed()[0]).toBe(handle);
    const fast = core.worker('slow');
    fast.broker.preSleep(fast.state);
    jest.advanceTimersByTime(999);
    expect(fast.take()).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(fast.take()).toEqual([{ type: 'NOOP', args: [] }]);
    expect(core.warnings).toEqual([`worker timeout on job ${handle}: requeued`]);
    slow.end(P.WORK_COMPLETE, handle, 'too late');
    expect(slow.expectOne(P.ERROR)).toEqual(['JOB_NOT_FOUND', 'Job given in work result not found']);
    expect(fast.grabbed()[0]).toBe(handle);
    fast.end(P.WORK_COMPLETE, handle, 'in time');
    expect(client.take()).toEqual([{ type: 'WORK_COMPLETE', args: [handle, 'in time'] }]);
    expect(jest.getTimerCount()).toBe(0);
  });

  test('a job that ends in time stops its CAN_DO_TIMEOUT timer', () => {
    const core = new Core();
    const handle = core.peer().submitted('quick', '', 'x', { background: true });
    const worker = core.peer();
    worker.broker.canDo(worker.state, 'quick', 5000);
    worker.grabbed();
    expect(jest.getTimerCount()).toBe(1);
    worker.end(P.WORK_COMPLETE, handle, 'r');
    expect(jest.getTimerCount()).toBe(0);
  });

  test('epoch jobs wait for their time, counted as waiting, then are queued and wake sleeping workers', () => {
    const core = new Core();
    const worker = core.worker('later');
    worker.broker.preSleep(worker.state);
    const client = core.peer();
    const now = Date.now();
    const late = client.submitted('later', '', 'late', { background: true, runAt: now + 5000 });
    const early = client.submitted('later', '', 'early', { background: true, runAt: now + 2000 });
    const past = client.submitted('later', '', 'past', { background: true, runAt: now - 1000 });
    expect(worker.take()).toEqual([{ type: 'NOOP', args: [] }]);
    expect(worker.grabbed()[0]).toBe(past);
    worker.grab();
    expect(worker.expectOne(P.NO_JOB)).toEqual([]);
    expect(core.waiting('later')).toEqual([0, 2, 0]);
    worker.broker.preSleep(worker.state);
    jest.advanceTimersByTime(1999);
    expect(worker.take()).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(worker.take()).toEqual([{ type: 'NOOP', args: [] }]);
    expect(worker.grabbed()[0]).toBe(early);
    jest.advanceTimersByTime(3000);
    expect(worker.grabbed()[0]).toBe(late);
  });

  test('cancel: a queued job goes at once, a running one is marked and its result dropped; its clients get WORK_FAIL', () => {
    const core = new Core();
    const client = core.peer();
    const running = client.submitted('c', '', 'r');
    const queued = client.submitted('c', '', 'q');
    const worker = core.worker('c');
    expect(worker.grabbed()[0]).toBe(running);
    expect(core.broker.cancel(queued)).toBe(true);
    expect(client.take()).toEqual([{ type: 'WORK_FAIL', args: [queued] }]);
    expect(core.jobs()).toEqual([[running, 0, false, false]]);
    expect(core.broker.cancel(running)).toBe(true);
    expect(client.take()).toEqual([{ type: 'WORK_FAIL', args: [running] }]);
    expect(core.jobs()).toEqual([[running, 0, true, false]]);
    expect(core.broker.cancel(running)).toBe(false);
    expect(core.broker.cancel('H:test:999')).toBe(false);
    expect(core.status('c')).toEqual([1, 1, 1]);
    worker.end(P.WORK_COMPLETE, running, 'dropped');
    expect(client.take()).toEqual([]);
    expect(worker.take()).toEqual([]);
    expect(core.jobs()).toEqual([]);
    expect(core.status('c')).toEqual([0, 0, 1]);
  });

  test('drop function: refused while workers can do it or jobs run; else its queued and delayed jobs are cancelled', () => {
    const core = new Core();
    const client = core.peer();
    const queued = client.submitted('d', '', 'q');
    client.submitted('d', '', 'later', { background: true, runAt: Date.now() + 60_000 });
    const worker = core.worker('d');
    const fn = core.broker.findFunction('d')!;
    expect(core.broker.dropFunction(fn)).toBe(false);
    worker.broker.cantDo(worker.state, 'd');
    expect(core.broker.dropFunction(fn)).toBe(true);
    expect(client.take()).toEqual([{ type: 'WORK_FAIL', args: [queued] }]);
    expect(core.jobs()).toEqual([]);
    expect(core.broker.findFunction('d')).toBeUndefined();
    jest.advanceTimersByTime(60_000);
    worker.canDo('d');
    worker.grab();
    expect(worker.expectOne(P.NO_JOB)).toEqual([]);
  });

  test('close stops every timer', () => {
    const core = new Core();
    core.peer().submitted('t', '', 'x', { background: true, runAt: Date.now() + 60_000 });
    core.peer().submitted('t', '', 'y', { background: true });
    const worker = core.peer();
    worker.broker.canDo(worker.state, 't', 5000);
    worker.grabbed();
    expect(jest.getTimerCount()).toBe(2);
    core.broker.close();
    expect(jest.getTimerCount()).toBe(0);
  });
});
