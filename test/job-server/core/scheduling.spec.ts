import { Priority } from '../../../lib/job-server/job.js';
import { PacketType } from '../../../lib/protocol/index.js';
import { Core } from './support/fake-peer.js';

const P = PacketType;

describe('JobBroker without sockets: which job a worker gets, and wake-ups', () => {
  test('HIGH before NORMAL before LOW across all of a worker’s functions; the oldest first within a priority', () => {
    const core = new Core();
    const client = core.peer();
    client.submitted('first', '', 'low-of-first', { priority: Priority.LOW, background: true });
    client.submitted('second', '', 'normal-of-second', { background: true });
    client.submitted('first', '', 'normal-of-first', { background: true });
    client.submitted('second', '', 'high-of-second', { priority: Priority.HIGH, background: true });
    expect(core.waiting('first')).toEqual([0, 1, 1]);
    const worker = core.worker('first', 'second');
    const order = [1, 2, 3, 4].map(() => worker.grabbed());
    expect(order.map(([, fn, data]) => `${fn}:${data}`)).toEqual([
      'second:high-of-second',
      'second:normal-of-second',
      'first:normal-of-first',
      'first:low-of-first',
    ]);
    worker.grab();
    expect(worker.take()).toEqual([{ type: 'NO_JOB', args: [] }]);
    expect(core.status('first')).toEqual([2, 2, 1]);
  });

  test('a worker only gets jobs of its functions', () => {
    const core = new Core();
    core.peer().submitted('other', '', 'x', { background: true });
    const worker = core.worker('mine');
    worker.grab();
    expect(worker.expectOne(P.NO_JOB)).toEqual([]);
  });

  test('workers of one function share its queue in turn: each job goes to one worker, oldest first, whoever asks', () => {
    const core = new Core();
    const client = core.peer();
    const handles = ['a', 'b', 'c', 'd'].map((data) => client.submitted('shared', '', data, { background: true }));
    const [one, two] = [core.worker('shared'), core.worker('shared')];
    expect([one.grabbed(), two.grabbed(), one.grabbed(), two.grabbed()]).toEqual(handles.map((handle, i) => [handle, 'shared', 'abcd'[i]]));
    expect(core.status('shared')).toEqual([4, 4, 2]);
  });

  test('GRAB_JOB_UNIQ gets JOB_ASSIGN_UNIQ; GRAB_JOB_ALL gets JOB_ASSIGN_ALL for a reduce job only', () => {
    const core = new Core();
    const client = core.peer();
    const plain = client.submitted('r', 'u1', 'd1', { background: true });
    const reduce = client.submitted('r', 'u2', 'd2', { background: true, reducer: 'red' });
    const worker = core.worker('r');
    worker.grab(P.GRAB_JOB_ALL);
    expect(worker.expectOne(P.JOB_ASSIGN_UNIQ)).toEqual([plain, 'r', 'u1', 'd1']);
    worker.grab(P.GRAB_JOB_ALL);
    expect(worker.expectOne(P.JOB_ASSIGN_ALL)).toEqual([reduce, 'r', 'u2', 'red', 'd2']);
  });

  test('a sleeping worker gets one NOOP when jobs arrive, and another only after it grabs again', () => {
    const core = new Core();
    const worker = core.worker('wake');
    worker.broker.preSleep(worker.state);
    expect(worker.take()).toEqual([]);
    const client = core.peer();
    client.submitted('wake', '', 'a', { background: true });
    expect(worker.take()).toEqual([{ type: 'NOOP', args: [] }]);
    client.submitted('wake', '', 'b', { background: true });
    expect(worker.take()).toEqual([]);
    expect(worker.grabbed()[2]).toBe('a');
    worker.broker.preSleep(worker.state);
    // 'b' waits: PRE_SLEEP is answered with NOOP at once, and the worker is not asleep.
    expect(worker.take()).toEqual([{ type: 'NOOP', args: [] }]);
    expect(worker.grabbed()[2]).toBe('b');
    worker.broker.preSleep(worker.state);
    expect(worker.take()).toEqual([]);
    client.submitted('wake', '', 'c', { background: true });
    expect(worker.take()).toEqual([{ type: 'NOOP', args: [] }]);
  });

  test('the NOOP is owed once until the worker grabs: PRE_SLEEP again without a grab brings no second one (as gearmand)', () => {
    const core = new Core();
    const sleeper = core.worker('once');
    const other = core.worker('once');
    sleeper.broker.preSleep(sleeper.state);
    const client = core.peer();
    client.submitted('once', '', 'a', { background: true });
    expect(sleeper.take()).toEqual([{ type: 'NOOP', args: [] }]);
    other.grabbed();
    sleeper.broker.preSleep(sleeper.state);
    sleeper.canDo('more');
    client.submitted('once', '', 'b', { background: true });
    client.submitted('more', '', 'c', { background: true });
    expect(sleeper.take()).toEqual([]);
    sleeper.grabbed();
    sleeper.grabbed();
    sleeper.broker.preSleep(sleeper.state);
    client.submitted('more', '', 'd', { background: true });
    expect(sleeper.take()).toEqual([{ type: 'NOOP', args: [] }]);
  });

  test('every sleeping worker of the function is woken, in the order they went to sleep; others are not', () => {
    const core = new Core();
    const woken: number[] = [];
    const [first, second, other] = [core.worker('both'), core.worker('both'), core.worker('elsewhere')];
    for (const worker of [second, first, other]) {
      const send = worker.send.bind(worker);
      worker.send = (packet) => {
        woken.push(worker.id);
        send(packet);
      };
      worker.broker.preSleep(worker.state);
    }
    core.peer().submitted('both', '', 'x', { background: true });
    expect(woken).toEqual([second.id, first.id]);
    expect([first.take(), second.take(), other.take()]).toEqual([[{ type: 'NOOP', args: [] }], [{ type: 'NOOP', args: [] }], []]);
  });

  test('a sleeping worker that registers another function is woken by its jobs; one that gave a function up is not', () => {
    const core = new Core();
    const worker = core.worker('old', 'dropped');
    worker.broker.preSleep(worker.state);
    worker.canDo('new');
    worker.broker.cantDo(worker.state, 'dropped');
    const client = core.peer();
    client.submitted('dropped', '', 'x', { background: true });
    expect(worker.take()).toEqual([]);
    client.submitted('new', '', 'x', { background: true });
    expect(worker.take()).toEqual([{ type: 'NOOP', args: [] }]);
  });

  test('CAN_DO twice counts twice and lists twice; CANT_DO drops every registration', () => {
    const core = new Core();
    const worker = core.worker('a', 'b', 'a');
    expect(core.status('a')).toEqual([0, 0, 2]);
    expect(worker.state.registrations().map((fn) => fn.name)).toEqual(['a', 'b', 'a']);
    worker.broker.cantDo(worker.state, 'a');
    expect(core.status('a')).toEqual([0, 0, 0]);
    expect(worker.state.registrations().map((fn) => fn.name)).toEqual(['b']);
    worker.broker.resetAbilities(worker.state);
    expect(core.status('b')).toEqual([0, 0, 0]);
    expect(worker.state.registrations()).toEqual([]);
  });
});

describe('JobBroker with atEndOfTurn: a GRAB_JOB that finds nothing waits for the end of the turn', () => {
  /** A broker whose end of turn the test decides. */
  function turnBased(): { core: Core; scheduled: () => number; endTurn: () => void } {
    const callbacks: (() => void)[] = [];
    const core = new Core({ atEndOfTurn: (callback) => callbacks.push(callback) });
    return { core, scheduled: () => callbacks.length, endTurn: () => callbacks.splice(0).forEach((callback) => callback()) };
  }

  test('a job submitted later in the same turn goes to the waiting worker instead of NO_JOB', () => {
    const { core, endTurn } = turnBased();
    const worker = core.worker('f');
    worker.grab(P.GRAB_JOB_UNIQ);
    expect(worker.take()).toEqual([]);
    const handle = core.peer().submitted('f', 'u', 'payload', { background: true });
    endTurn();
    expect(worker.expectOne(P.JOB_ASSIGN_UNIQ)).toEqual([handle, 'f', 'u', 'payload']);
    expect(core.status('f')).toEqual([1, 1, 1]);
  });

  test('nothing came: NO_JOB at the end of the turn, for every waiting worker, from one scheduled callback', () => {
    const { core, scheduled, endTurn } = turnBased();
    const [one, two] = [core.worker('f'), core.worker('f', 'g')];
    one.grab();
    two.grab();
    expect(scheduled()).toBe(1);
    expect([one.take(), two.take()]).toEqual([[], []]);
    endTurn();
    expect([one.expectOne(P.NO_JOB), two.expectOne(P.NO_JOB)]).toEqual([[], []]);
    // The next turn schedules again.
    one.grab();
    expect(scheduled()).toBe(1);
  });

  test('waiting workers are served in the order they asked; the rest get NO_JOB', () => {
    const { core, endTurn } = turnBased();
    const [first, second] = [core.worker('f'), core.worker('f')];
    first.grab();
    second.grab();
    const handle = core.peer().submitted('f', '', 'only', { background: true });
    endTurn();
    expect(first.expectOne(P.JOB_ASSIGN)).toEqual([handle, 'f', 'only']);
    expect(second.expectOne(P.NO_JOB)).toEqual([]);
  });

  test('answerGrab answers at once (the connection calls it before the worker’s next packet); a waiting worker that leaves gets nothing', () => {
    const { core, endTurn } = turnBased();
    const [asking, leaving] = [core.worker('f'), core.worker('f')];
    asking.grab();
    leaving.grab();
    expect(core.broker.isGrabWaiting(asking.state)).toBe(true);
    core.broker.answerGrab(asking.state);
    expect(asking.expectOne(P.NO_JOB)).toEqual([]);
    expect(core.broker.isGrabWaiting(asking.state)).toBe(false);
    leaving.disconnect();
    core.peer().submitted('f', '', 'x', { background: true });
    endTurn();
    expect([asking.take(), leaving.take()]).toEqual([[], []]);
    expect(core.status('f')).toEqual([1, 0, 1]);
  });

  test('a waiting worker is awake: jobs arriving during the turn send it no NOOP', () => {
    const { core, endTurn } = turnBased();
    const worker = core.worker('f');
    worker.grab();
    core.peer().submitted('f', '', 'x', { background: true });
    endTurn();
    expect(worker.take().map((packet) => packet.type)).toEqual(['JOB_ASSIGN']);
  });
});
