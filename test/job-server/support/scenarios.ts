import { PacketType } from '../../../lib/protocol/index.js';
import { adminQuery, RawPeer } from './raw-peer.js';

/** What a scenario gets: a fresh job server (gearmand or ours) on `port`. */
export interface ScenarioContext {
  readonly port: number;
  /** A new raw connection, closed after the scenario. */
  peer(): Promise<RawPeer>;
  /** A worker connection that registered the functions. */
  worker(...functions: string[]): Promise<RawPeer>;
  admin(line: string, listing?: boolean): Promise<string>;
}

export interface Scenario {
  readonly title: string;
  /** Server settings (gearmand flags are derived from them). */
  readonly options?: { jobRetries?: number };
  /** Set when gearmand 1.1.20 behaves otherwise (by design, see the README): the reason. */
  readonly oursOnly?: string;
  run(context: ScenarioContext): Promise<void>;
}

const P = PacketType;

async function submit(client: RawPeer, type: PacketType, fn: string, unique: string, data: string): Promise<string> {
  client.send(type, fn, unique, data);
  const [handle] = await client.expect(P.JOB_CREATED);
  return handle;
}

async function statusRow(context: ScenarioContext, fn: string): Promise<string | undefined> {
  const reply = await context.admin('status', true);
  return reply.split('\n').find((row) => row.startsWith(`${fn}\t`));
}

/**
 * Behaviour of the binary and admin protocols, each scenario with exact packets. Run against
 * gearmand and against our server by gearmand-parity.spec.ts.
 */
export const scenarios: Scenario[] = [
  {
    title: 'ECHO_REQ is answered with ECHO_RES carrying the same bytes',
    async run(context) {
      const peer = await context.peer();
      peer.send(P.ECHO_REQ, Buffer.from([0, 1, 2, 255, 0]));
      expect(await peer.expect(P.ECHO_RES)).toEqual(['\0\x01\x02\xff\0']);
    },
  },
  {
    title: 'a foreground job runs end to end: JOB_ASSIGN_UNIQ, WORK_DATA, WORK_WARNING, WORK_STATUS, GET_STATUS, WORK_COMPLETE',
    async run(context) {
      const client = await context.peer();
      const handle = await submit(client, P.SUBMIT_JOB, 'reverse', 'u-1', 'hello');
      expect(handle).toMatch(/^H:.+:\d+$/);
      const worker = await context.worker('reverse');
      worker.send(P.GRAB_JOB_UNIQ);
      expect(await worker.expect(P.JOB_ASSIGN_UNIQ)).toEqual([handle, 'reverse', 'u-1', 'hello']);
      worker.send(P.WORK_DATA, handle, 'part');
      expect(await client.expect(P.WORK_DATA)).toEqual([handle, 'part']);
      worker.send(P.WORK_WARNING, handle, 'careful');
      expect(await client.expect(P.WORK_WARNING)).toEqual([handle, 'careful']);
      worker.send(P.WORK_STATUS, handle, '1', '4');
      expect(await client.expect(P.WORK_STATUS)).toEqual([handle, '1', '4']);
      client.send(P.GET_STATUS, handle);
      expect(await client.expect(P.STATUS_RES)).toEqual([handle, '1', '1', '1', '4']);
      worker.send(P.WORK_COMPLETE, handle, 'olleh');
      expect(await client.expect(P.WORK_COMPLETE)).toEqual([handle, 'olleh']);
      client.send(P.GET_STATUS, handle);
      expect(await client.expect(P.STATUS_RES)).toEqual([handle, '0', '0', '0', '0']);
    },
  },
  {
    title: 'GRAB_JOB gets JOB_ASSIGN without the unique id; a queued job shows known and not running',
    async run(context) {
      const client = await context.peer();
      const handle = await submit(client, P.SUBMIT_JOB_BG, 'f', 'u', 'data');
      client.send(P.GET_STATUS, handle);
      expect(await client.expect(P.STATUS_RES)).toEqual([handle, '1', '0', '0', '0']);
      const worker = await context.worker('f');
      worker.send(P.GRAB_JOB);
      expect(await worker.expect(P.JOB_ASSIGN)).toEqual([handle, 'f', 'data']);
    },
  },
  {
    title: 'GRAB_JOB with nothing queued gets NO_JOB',
    async run(context) {
      const worker = await context.worker('idle');
      worker.send(P.GRAB_JOB);
      await worker.expect(P.NO_JOB);
      worker.send(P.GRAB_JOB_UNIQ);
      await worker.expect(P.NO_JOB);
    },
  },
  {
    title: 'a sleeping worker gets one NOOP when jobs arrive, and another only after it grabs again',
    async run(context) {
      const worker = await context.worker('wake');
      worker.send(P.PRE_SLEEP);
      expect(await worker.sync()).toEqual([]);
      const client = await context.peer();
      await submit(client, P.SUBMIT_JOB_BG, 'wake', '', 'a');
      await worker.expect(P.NOOP);
      await submit(client, P.SUBMIT_JOB_BG, 'wake', '', 'b');
      expect(await worker.sync()).toEqual([]);
      worker.send(P.GRAB_JOB);
      expect((await worker.expect(P.JOB_ASSIGN))[2]).toBe('a');
      worker.send(P.PRE_SLEEP);
      await worker.expect(P.NOOP); // 'b' is waiting: woken at once
    },
  },
  {
    title: 'a sleeping worker that registers another function is woken by its jobs',
    async run(context) {
      const worker = await context.worker('old');
      worker.send(P.PRE_SLEEP);
      worker.send(P.CAN_DO, 'new');
      expect(await worker.sync()).toEqual([]);
      const client = await context.peer();
      await submit(client, P.SUBMIT_JOB_BG, 'new', '', 'x');
      await worker.expect(P.NOOP);
    },
  },
  {
    title: 'every sleeping worker of the function is woken',
    async run(context) {
      const first = await context.worker('both');
      const second = await context.worker('both');
      const other = await context.worker('elsewhere');
      for (const worker of [first, second, other]) {
        worker.send(P.PRE_SLEEP);
        await worker.sync();
      }
      const client = await context.peer();
      await submit(client, P.SUBMIT_JOB_BG, 'both', '', 'x');
      await first.expect(P.NOOP);
      await second.expect(P.NOOP);
      expect(await other.sync()).toEqual([]);
    },
  },
  {
    title: 'within a function HIGH runs before NORMAL before LOW, FIFO within each',
    async run(context) {
      const client = await context.peer();
      await submit(client, P.SUBMIT_JOB_LOW_BG, 'prio', '', 'low');
      await submit(client, P.SUBMIT_JOB_BG, 'prio', '', 'normal-1');
      await submit(client, P.SUBMIT_JOB_HIGH_BG, 'prio', '', 'high');
      await submit(client, P.SUBMIT_JOB_BG, 'prio', '', 'normal-2');
      const prioritystatus = await context.admin('prioritystatus', true);
      expect(prioritystatus.split('\n')).toContain('prio\t1\t2\t1\t0');
      const worker = await context.worker('prio');
      const order: string[] = [];
      for (let i = 0; i < 4; i++) {
        worker.send(P.GRAB_JOB);
        order.push((await worker.expect(P.JOB_ASSIGN))[2]);
      }
      expect(order).toEqual(['high', 'normal-1', 'normal-2', 'low']);
    },
  },
  {
    title: 'a worker gets the highest-priority job across all its functions',
    oursOnly: 'gearmand 1.1.20 looks at functions in registration order; 2.0 picks by priority across them',
    async run(context) {
      const client = await context.peer();
      await submit(client, P.SUBMIT_JOB_LOW_BG, 'first', '', 'low-of-first');
      await submit(client, P.SUBMIT_JOB_HIGH_BG, 'second', '', 'high-of-second');
      const worker = await context.worker('first', 'second');
      worker.send(P.GRAB_JOB);
      expect(await worker.expect(P.JOB_ASSIGN)).toEqual([expect.any(String), 'second', 'high-of-second']);
      worker.send(P.GRAB_JOB);
      expect((await worker.expect(P.JOB_ASSIGN))[2]).toBe('low-of-first');
    },
  },
  {
    title: 'a worker may hold several jobs at once on one connection',
    async run(context) {
      const client = await context.peer();
      const one = await submit(client, P.SUBMIT_JOB, 'multi', '', '1');
      const two = await submit(client, P.SUBMIT_JOB, 'multi', '', '2');
      const worker = await context.worker('multi');
      worker.send(P.GRAB_JOB);
      worker.send(P.GRAB_JOB);
      expect((await worker.expect(P.JOB_ASSIGN))[0]).toBe(one);
      expect((await worker.expect(P.JOB_ASSIGN))[0]).toBe(two);
      expect(await statusRow(context, 'multi')).toBe('multi\t2\t2\t1');
      worker.send(P.WORK_COMPLETE, two, 'two');
      worker.send(P.WORK_COMPLETE, one, 'one');
      expect(await client.expect(P.WORK_COMPLETE)).toEqual([two, 'two']);
      expect(await client.expect(P.WORK_COMPLETE)).toEqual([one, 'one']);
    },
  },
  {
    title: 'submits with the same unique id coalesce: one job, every foreground client gets the results',
    async run(context) {
      const first = await context.peer();
      const second = await context.peer();
      const handle = await submit(first, P.SUBMIT_JOB, 'co', 'same', 'payload-1');
      expect(await submit(second, P.SUBMIT_JOB_HIGH, 'co', 'same', 'payload-2')).toBe(handle);
      expect(await submit(second, P.SUBMIT_JOB_BG, 'co', 'same', 'payload-3')).toBe(handle);
      expect(await statusRow(context, 'co')).toBe('co\t1\t0\t0');
      const worker = await context.worker('co');
      worker.send(P.GRAB_JOB_UNIQ);
      expect(await worker.expect(P.JOB_ASSIGN_UNIQ)).toEqual([handle, 'co', 'same', 'payload-1']);
      worker.send(P.WORK_DATA, handle, 'd');
      expect(await first.expect(P.WORK_DATA)).toEqual([handle, 'd']);
      expect(await second.expect(P.WORK_DATA)).toEqual([handle, 'd']);
      worker.send(P.WORK_COMPLETE, handle, 'done');
      expect(await first.expect(P.WORK_COMPLETE)).toEqual([handle, 'done']);
      expect(await second.expect(P.WORK_COMPLETE)).toEqual([handle, 'done']);
    },
  },
  {
    title: 'a client joining a running job gets every later WORK_* packet',
    async run(context) {
      const first = await context.peer();
      const handle = await submit(first, P.SUBMIT_JOB, 'run', 'key', 'x');
      const worker = await context.worker('run');
      worker.send(P.GRAB_JOB);
      await worker.expect(P.JOB_ASSIGN);
      const late = await context.peer();
      expect(await submit(late, P.SUBMIT_JOB, 'run', 'key', 'x')).toBe(handle);
      worker.send(P.WORK_STATUS, handle, '5', '10');
      expect(await late.expect(P.WORK_STATUS)).toEqual([handle, '5', '10']);
      worker.send(P.WORK_COMPLETE, handle, 'r');
      expect(await late.expect(P.WORK_COMPLETE)).toEqual([handle, 'r']);
      expect(await first.expect(P.WORK_STATUS)).toEqual([handle, '5', '10']);
      expect(await first.expect(P.WORK_COMPLETE)).toEqual([handle, 'r']);
    },
  },
  {
    title: 'an empty unique id never coalesces; the same unique under another function is another job',
    async run(context) {
      const client = await context.peer();
      const a = await submit(client, P.SUBMIT_JOB_BG, 'e', '', 'same');
      const b = await submit(client, P.SUBMIT_JOB_BG, 'e', '', 'same');
      expect(a).not.toBe(b);
      const c = await submit(client, P.SUBMIT_JOB_BG, 'e', 'k', 'x');
      const d = await submit(client, P.SUBMIT_JOB_BG, 'e2', 'k', 'x');
      expect(c).not.toBe(d);
      expect(await statusRow(context, 'e')).toBe('e\t3\t0\t0');
    },
  },
  {
    title: 'unique "-" coalesces on the payload bytes',
    async run(context) {
      const client = await context.peer();
      const a = await submit(client, P.SUBMIT_JOB_BG, 'dash', '-', 'payload');
      expect(await submit(client, P.SUBMIT_JOB_BG, 'dash', '-', 'payload')).toBe(a);
      expect(await submit(client, P.SUBMIT_JOB_BG, 'dash', '-', 'other')).not.toBe(a);
      expect(await statusRow(context, 'dash')).toBe('dash\t2\t0\t0');
    },
  },
  {
    title: 'a unique id over 64 bytes is refused with ERROR ARGUMENT_TOO_LARGE; 64 bytes is fine',
    async run(context) {
      const client = await context.peer();
      await submit(client, P.SUBMIT_JOB_BG, 'long', 'u'.repeat(64), 'x');
      client.sendUnchecked(P.SUBMIT_JOB_BG, 'long', 'u'.repeat(65), 'x');
      expect(await client.expect(P.ERROR)).toEqual(['ARGUMENT_TOO_LARGE', 'Unique value too large']);
      client.send(P.ECHO_REQ, 'still here');
      expect(await client.expect(P.ECHO_RES)).toEqual(['still here']);
    },
  },
  {
    title: 'a worker that disconnects mid-job: the job is requeued with one retry and runs on another worker',
    async run(context) {
      const client = await context.peer();
      const handle = await submit(client, P.SUBMIT_JOB, 'flaky', 'r', 'data');
      const quitter = await context.worker('flaky');
      quitter.send(P.GRAB_JOB);
      await quitter.expect(P.JOB_ASSIGN);
      const stayer = await context.worker('flaky');
      stayer.send(P.PRE_SLEEP);
      await stayer.sync();
      await quitter.close();
      await stayer.expect(P.NOOP);
      const jobs = await context.admin('show jobs', true);
      expect(jobs).toBe(`${handle}\t1\t0\t0\n.\n`);
      stayer.send(P.GRAB_JOB_UNIQ);
      expect(await stayer.expect(P.JOB_ASSIGN_UNIQ)).toEqual([handle, 'flaky', 'r', 'data']);
      stayer.send(P.WORK_COMPLETE, handle, 'ok');
      expect(await client.expect(P.WORK_COMPLETE)).toEqual([handle, 'ok']);
    },
  },
  {
    title: 'past the retry limit the clients get WORK_FAIL and the job is gone',
    options: { jobRetries: 1 },
    async run(context) {
      const client = await context.peer();
      const handle = await submit(client, P.SUBMIT_JOB, 'doomed', '', 'x');
      const worker = await context.worker('doomed');
      worker.send(P.GRAB_JOB);
      await worker.expect(P.JOB_ASSIGN);
      await worker.close();
      expect(await client.expect(P.WORK_FAIL)).toEqual([handle]);
      expect(await statusRow(context, 'doomed')).toBe('doomed\t0\t0\t0');
    },
  },
  {
    title: 'a client that disconnects: its queued foreground job is dropped, a background one stays',
    oursOnly: 'gearmand 1.1.20 keeps the abandoned job counted until a worker would take it',
    async run(context) {
      const client = await context.peer();
      await submit(client, P.SUBMIT_JOB, 'gone', '', 'fg');
      await submit(client, P.SUBMIT_JOB_BG, 'gone', '', 'bg');
      expect(await statusRow(context, 'gone')).toBe('gone\t2\t0\t0');
      await client.close();
      const worker = await context.worker('gone');
      worker.send(P.GRAB_JOB);
      expect((await worker.expect(P.JOB_ASSIGN))[2]).toBe('bg');
      worker.send(P.GRAB_JOB);
      await worker.expect(P.NO_JOB);
    },
  },
  {
    title: 'a client that disconnects while its job runs: the job finishes, the result goes nowhere',
    async run(context) {
      const client = await context.peer();
      const handle = await submit(client, P.SUBMIT_JOB, 'orphan', '', 'x');
      const worker = await context.worker('orphan');
      worker.send(P.GRAB_JOB);
      await worker.expect(P.JOB_ASSIGN);
      await client.close();
      worker.send(P.WORK_COMPLETE, handle, 'late');
      expect(await worker.sync()).toEqual([]);
      expect(await statusRow(context, 'orphan')).toBe('orphan\t0\t0\t1');
    },
  },
  {
    title: 'WORK_* for a job the connection does not hold: ERROR JOB_NOT_FOUND, the connection stays',
    async run(context) {
      const client = await context.peer();
      const handle = await submit(client, P.SUBMIT_JOB_BG, 'owned', '', 'x');
      const holder = await context.worker('owned');
      holder.send(P.GRAB_JOB);
      await holder.expect(P.JOB_ASSIGN);
      const stranger = await context.worker('owned');
      stranger.send(P.WORK_COMPLETE, handle, 'stolen');
      expect(await stranger.expect(P.ERROR)).toEqual(['JOB_NOT_FOUND', 'Job given in work result not found']);
      stranger.send(P.WORK_FAIL, 'H:nowhere:1');
      expect(await stranger.expect(P.ERROR)).toEqual(['JOB_NOT_FOUND', 'Job given in work result not found']);
      stranger.send(P.WORK_DATA, 'H:nowhere:1', 'x');
      expect(await stranger.expect(P.ERROR)).toEqual(['JOB_NOT_FOUND', 'Job does not exist on server']);
      stranger.send(P.ECHO_REQ, 'alive');
      expect(await stranger.expect(P.ECHO_RES)).toEqual(['alive']);
      holder.send(P.WORK_COMPLETE, handle, 'mine');
      expect(await holder.sync()).toEqual([]);
    },
  },
  {
    title: 'WORK_EXCEPTION reaches clients with the exceptions option; the others get WORK_FAIL',
    async run(context) {
      const plain = await context.peer();
      const wants = await context.peer();
      wants.send(P.OPTION_REQ, 'exceptions');
      expect(await wants.expect(P.OPTION_RES)).toEqual(['exceptions']);
      const handle = await submit(plain, P.SUBMIT_JOB, 'boom', 'k', 'x');
      await submit(wants, P.SUBMIT_JOB, 'boom', 'k', 'x');
      const worker = await context.worker('boom');
      worker.send(P.GRAB_JOB);
      await worker.expect(P.JOB_ASSIGN);
      worker.send(P.WORK_EXCEPTION, handle, 'it broke');
      // gearmand 1.1.20 sends this WORK_FAIL with a NUL after the handle; we send the handle alone.
      expect((await plain.expect(P.WORK_FAIL)).map((arg) => arg.replace(/\0$/, ''))).toEqual([handle]);
      expect(await wants.expect(P.WORK_EXCEPTION)).toEqual([handle, 'it broke']);
      expect(await statusRow(context, 'boom')).toBe('boom\t0\t0\t1');
    },
  },
  {
    title: 'WORK_FAIL ends the job; a failed job is not retried',
    async run(context) {
      const client = await context.peer();
      const handle = await submit(client, P.SUBMIT_JOB, 'fails', '', 'x');
      const worker = await context.worker('fails');
      worker.send(P.GRAB_JOB);
      await worker.expect(P.JOB_ASSIGN);
      worker.send(P.WORK_FAIL, handle);
      expect(await client.expect(P.WORK_FAIL)).toEqual([handle]);
      worker.send(P.GRAB_JOB);
      await worker.expect(P.NO_JOB);
    },
  },
  {
    title: 'OPTION_REQ for an unknown option gets ERROR UNKNOWN_OPTION',
    async run(context) {
      const peer = await context.peer();
      peer.send(P.OPTION_REQ, 'telepathy');
      expect(await peer.expect(P.ERROR)).toEqual(['UNKNOWN_OPTION', 'Server does not recognize given option']);
      peer.send(P.ECHO_REQ, 'ok');
      await peer.expect(P.ECHO_RES);
    },
  },
  {
    title: 'GET_STATUS_UNIQUE reports a known job and its waiting clients, and an unknown one',
    async run(context) {
      const client = await context.peer();
      await submit(client, P.SUBMIT_JOB, 'su', 'the-unique', 'x');
      client.send(P.GET_STATUS_UNIQUE, 'the-unique');
      expect(await client.expect(P.STATUS_RES_UNIQUE)).toEqual(['the-unique', '1', '0', '0', '0', '1']);
      client.send(P.GET_STATUS_UNIQUE, 'nope');
      expect(await client.expect(P.STATUS_RES_UNIQUE)).toEqual(['nope', '0', '0', '0', '0', '0']);
    },
  },
  {
    title: 'maxqueue: a submit past the limit gets ERROR QUEUE_ERROR; a coalescing submit is not counted',
    async run(context) {
      const client = await context.peer();
      await submit(client, P.SUBMIT_JOB_BG, 'capped', 'one', 'x');
      expect(await context.admin('maxqueue capped 1')).toBe('OK\r\n');
      expect(await submit(client, P.SUBMIT_JOB_BG, 'capped', 'one', 'x')).toMatch(/^H:/);
      client.send(P.SUBMIT_JOB_BG, 'capped', 'two', 'x');
      expect(await client.expect(P.ERROR)).toEqual(['QUEUE_ERROR', 'Job queue is full']);
      expect(await context.admin('maxqueue capped')).toBe('OK\r\n');
      await submit(client, P.SUBMIT_JOB_BG, 'capped', 'two', 'x');
    },
  },
  {
    title: 'CAN_DO_TIMEOUT: an expired job is requeued and the slow worker gets JOB_NOT_FOUND',
    async run(context) {
      const client = await context.peer();
      const handle = await submit(client, P.SUBMIT_JOB, 'slow', '', 'x');
      const slow = await context.peer();
      slow.send(P.CAN_DO_TIMEOUT, 'slow', '1000');
      slow.send(P.GRAB_JOB);
      await slow.expect(P.JOB_ASSIGN);
      const fast = await context.worker('slow');
      fast.send(P.PRE_SLEEP);
      await fast.sync();
      await new Promise((resolve) => setTimeout(resolve, 1600));
      slow.send(P.WORK_COMPLETE, handle, 'too late');
      expect(await slow.expect(P.ERROR)).toEqual(['JOB_NOT_FOUND', 'Job given in work result not found']);
      // gearmand 1.1.20 sends the wake-up only once some connection is active again; ours sends it at expiry.
      await fast.expect(P.NOOP);
      fast.send(P.GRAB_JOB);
      expect((await fast.expect(P.JOB_ASSIGN))[0]).toBe(handle);
      fast.send(P.WORK_COMPLETE, handle, 'in time');
      expect(await client.expect(P.WORK_COMPLETE)).toEqual([handle, 'in time']);
      expect((await context.admin('show jobs', true))).toBe('.\n');
    },
  },
  {
    title: 'SET_CLIENT_ID and CAN_DO show in the workers listing; CANT_DO and RESET_ABILITIES take functions away',
    async run(context) {
      const worker = await context.peer();
      worker.send(P.SET_CLIENT_ID, 'worker-7');
      worker.send(P.CAN_DO, 'alpha');
      worker.send(P.CAN_DO, 'beta');
      await worker.sync();
      let rows = (await context.admin('workers', true)).split('\n');
      const row = rows.find((line) => line.includes(' worker-7 :'));
      expect(row).toMatch(/^\d+ 127\.0\.0\.1 worker-7 : (alpha beta|beta alpha)$/);
      worker.send(P.CANT_DO, 'alpha');
      await worker.sync();
      rows = (await context.admin('workers', true)).split('\n');
      expect(rows.find((line) => line.includes(' worker-7 :'))).toMatch(/ worker-7 : beta$/);
      expect(await statusRow(context, 'alpha')).toBe('alpha\t0\t0\t0');
      worker.send(P.RESET_ABILITIES);
      await worker.sync();
      rows = (await context.admin('workers', true)).split('\n');
      expect(rows.find((line) => line.includes(' worker-7 :'))).toMatch(/ worker-7 :$/);
    },
  },
  {
    title: 'a reduce job is handed out with JOB_ASSIGN_ALL to GRAB_JOB_ALL',
    async run(context) {
      const client = await context.peer();
      client.send(P.SUBMIT_REDUCE_JOB_BACKGROUND, 'mapper', 'ru', 'reducer-fn', '', 'x');
      const [handle] = await client.expect(P.JOB_CREATED);
      const worker = await context.worker('mapper');
      worker.send(P.GRAB_JOB_ALL);
      expect(await worker.expect(P.JOB_ASSIGN_ALL)).toEqual([handle, 'mapper', 'ru', 'reducer-fn', 'x']);
    },
  },
  {
    title: 'ALL_YOURS is answered with ERROR INVALID_COMMAND and the connection stays',
    async run(context) {
      const peer = await context.peer();
      peer.send(P.ALL_YOURS);
      expect(await peer.expect(P.ERROR)).toEqual(['INVALID_COMMAND', 'Command not expected']);
      peer.send(P.ECHO_REQ, 'x');
      await peer.expect(P.ECHO_RES);
    },
  },
  {
    title: 'a response packet sent to the server gets ERROR INVALID_MAGIC and the connection stays',
    async run(context) {
      const peer = await context.peer();
      const header = Buffer.alloc(12);
      header.write('\0RES', 0, 'latin1');
      header.writeUInt32BE(P.WORK_COMPLETE, 4);
      header.writeUInt32BE(8, 8);
      peer.sendBytes(Buffer.concat([header, Buffer.from('H:x\0done', 'latin1')]));
      expect(await peer.expect(P.ERROR)).toEqual(['INVALID_MAGIC', 'Request magic expected']);
      peer.send(P.ECHO_REQ, 'still here');
      expect(await peer.expect(P.ECHO_RES)).toEqual(['still here']);
    },
  },
  {
    title: 'bad magic closes the offending connection only; queued jobs and other connections are untouched',
    async run(context) {
      const client = await context.peer();
      const handle = await submit(client, P.SUBMIT_JOB_BG, 'safe', '', 'x');
      const vandal = await context.peer();
      vandal.sendBytes(Buffer.from('\0XYZ\0\0\0\x01\0\0\0\0', 'latin1'));
      expect(await vandal.closedByServer()).toBe(true);
      client.send(P.GET_STATUS, handle);
      expect(await client.expect(P.STATUS_RES)).toEqual([handle, '1', '0', '0', '0']);
    },
  },
  {
    title: 'admin status, prioritystatus, show jobs and show unique jobs',
    async run(context) {
      const client = await context.peer();
      const a = await submit(client, P.SUBMIT_JOB_BG, 'adm', 'ua', 'x');
      const b = await submit(client, P.SUBMIT_JOB_HIGH_BG, 'adm', 'ub', 'y');
      await context.worker('adm');
      expect(await statusRow(context, 'adm')).toBe('adm\t2\t0\t1');
      expect((await context.admin('prioritystatus', true)).split('\n')).toContain('adm\t1\t1\t0\t1');
      const jobs = (await context.admin('show jobs', true)).split('\n');
      expect(jobs).toEqual(expect.arrayContaining([`${a}\t0\t0\t1`, `${b}\t0\t0\t1`, '.']));
      const uniques = (await context.admin('show unique jobs', true)).split('\n');
      expect(uniques).toEqual(expect.arrayContaining(['ua', 'ub', '.']));
      expect(await context.admin('STATUS', true)).toMatch(/\n\.\n$/);
    },
  },
  {
    title: 'admin cancel job: its clients get WORK_FAIL; an unknown handle gets ERR UNKNOWN_JOB',
    async run(context) {
      const client = await context.peer();
      const handle = await submit(client, P.SUBMIT_JOB, 'cancellable', '', 'x');
      expect(await context.admin(`cancel job ${handle}`)).toBe('OK\r\n');
      expect(await client.expect(P.WORK_FAIL)).toEqual([handle]);
      expect(await context.admin('cancel job H:nowhere:999')).toBe('ERR UNKNOWN_JOB\r\n');
    },
  },
  {
    title: 'admin errors and simple replies are byte-compatible',
    async run(context) {
      expect(await context.admin('frobnicate')).toBe('ERR UNKNOWN_COMMAND Unknown+server+commandfrobnicate\r\n');
      expect(await context.admin('shutdown')).toBe('ERR UNKNOWN_COMMAND Unknown+server+commandshutdown\r\n');
      expect(await context.admin('maxqueue')).toBe('ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+maxqueue\r\n');
      expect(await context.admin('show nothing')).toBe('ERR UNKNOWN_SHOW_ARGUMENTS\r\n');
      expect(await context.admin('getpid')).toMatch(/^OK \d+\n$/);
      expect(await context.admin('version')).toMatch(/^OK \S+\n$/);
      expect(await context.admin('verbose')).toMatch(/^OK [A-Z]+\n$/);
      expect(await context.admin('drop function never-seen')).toBe('ERR function not found\r\n');
    },
  },
  {
    title: 'admin drop function is refused while a worker can do it',
    async run(context) {
      await context.worker('busy');
      expect(await context.admin('drop function busy')).toBe('ERR there are still connected workers or executing clients\r\n');
    },
  },
  {
    title: 'admin create function then drop function',
    oursOnly: 'gearmand 1.1.20 cuts the last two characters off the name `create function` makes',
    async run(context) {
      expect(await context.admin('create function fresh')).toBe('OK\r\n');
      expect(await statusRow(context, 'fresh')).toBe('fresh\t0\t0\t0');
      expect(await context.admin('drop function fresh')).toBe('OK\r\n');
      expect(await statusRow(context, 'fresh')).toBeUndefined();
    },
  },
  {
    title: 'an epoch job runs at its time: a sleeping worker is woken by the timer alone',
    oursOnly: 'gearmand 1.1.20 only looks at epoch jobs when another job arrives; 2.0 arms a timer',
    async run(context) {
      const worker = await context.worker('later');
      worker.send(P.PRE_SLEEP);
      await worker.sync();
      const client = await context.peer();
      const when = Math.floor(Date.now() / 1000) + 2;
      client.send(P.SUBMIT_JOB_EPOCH, 'later', '', String(when), 'tick');
      const [handle] = await client.expect(P.JOB_CREATED);
      worker.send(P.GRAB_JOB);
      await worker.expect(P.NO_JOB);
      worker.send(P.PRE_SLEEP);
      await worker.expect(P.NOOP, 4000);
      expect(Date.now()).toBeGreaterThanOrEqual((when - 1) * 1000);
      worker.send(P.GRAB_JOB);
      expect(await worker.expect(P.JOB_ASSIGN)).toEqual([handle, 'later', 'tick']);
    },
  },
  {
    title: 'SUBMIT_JOB_SCHED queues a background job for the next matching minute; a bad field gets an ERROR',
    oursOnly: 'gearmand answers SUBMIT_JOB_SCHED with ERROR; this server implements it',
    async run(context) {
      const client = await context.peer();
      client.send(P.SUBMIT_JOB_SCHED, 'cron', '', '*', '*', '*', '*', '*', 'data');
      const [handle] = await client.expect(P.JOB_CREATED);
      expect(await statusRow(context, 'cron')).toBe('cron\t1\t0\t0');
      const worker = await context.worker('cron');
      worker.send(P.GRAB_JOB);
      await worker.expect(P.NO_JOB);
      client.send(P.GET_STATUS, handle);
      expect(await client.expect(P.STATUS_RES)).toEqual([handle, '1', '0', '0', '0']);
      client.send(P.SUBMIT_JOB_SCHED, 'cron', '', '61', '*', '*', '*', '*', 'data');
      expect((await client.expect(P.ERROR))[0]).toBe('INVALID_SCHEDULE');
    },
  },
];
