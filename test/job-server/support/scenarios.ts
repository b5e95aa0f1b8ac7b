import { PacketType } from '../../../lib/protocol/index.js';
import { inGearmandOrder } from '../../../lib/job-server/gearmand-order.js';
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
  readonly options?: { jobRetries?: number; exceptions?: boolean };
  /** Set when gearmand 1.1.20 behaves otherwise (by design, see docs/job-server.md): the reason. */
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
      // gearmand sends this WORK_FAIL with a NUL after the handle (Perl's Gearman::Client dies on
      // it); we send the handle alone, by design (see docs/job-server.md).
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
      expect(await context.admin('show jobs', true)).toBe('.\n');
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
      expect(await context.admin('maxqueue')).toBe(
        'ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+maxqueue\r\n',
      );
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
  {
    title: 'a payload on an argument-less packet is ignored (GRAB_JOB, GRAB_JOB_UNIQ, GRAB_JOB_ALL, PRE_SLEEP, RESET_ABILITIES, ALL_YOURS)',
    async run(context) {
      const worker = await context.worker('junk');
      worker.sendUnchecked(P.GRAB_JOB, 'junk');
      await worker.expect(P.NO_JOB);
      worker.sendUnchecked(P.GRAB_JOB_UNIQ, 'a', 'b');
      await worker.expect(P.NO_JOB);
      worker.sendUnchecked(P.GRAB_JOB_ALL, 'x');
      await worker.expect(P.NO_JOB);
      worker.sendUnchecked(P.ALL_YOURS, 'x');
      expect(await worker.expect(P.ERROR)).toEqual(['INVALID_COMMAND', 'Command not expected']);
      worker.sendUnchecked(P.PRE_SLEEP, 'zz');
      expect(await worker.sync()).toEqual([]);
      const client = await context.peer();
      const handle = await submit(client, P.SUBMIT_JOB_BG, 'junk', '', 'x');
      await worker.expect(P.NOOP);
      worker.sendUnchecked(P.GRAB_JOB, '\0\0\0');
      expect(await worker.expect(P.JOB_ASSIGN)).toEqual([handle, 'junk', 'x']);
      worker.sendUnchecked(P.RESET_ABILITIES, 'junk');
      await worker.sync();
      expect(await statusRow(context, 'junk')).toBe('junk\t1\t0\t0');
    },
  },
  {
    title: 'a type only a server sends, with request magic, gets ERROR INVALID_COMMAND and the connection stays',
    async run(context) {
      const peer = await context.peer();
      const sent: [number, string[]][] = [
        [P.NOOP, []],
        [P.UNUSED, []],
        [P.JOB_CREATED, ['H:x:1']],
        [P.NO_JOB, []],
        [P.JOB_ASSIGN, ['H:x:1', 'f', 'd']],
        [P.ECHO_RES, ['x']],
        [P.ERROR, ['CODE', 'text']],
        [P.STATUS_RES, ['H:x:1', '0', '0', '0', '0']],
        [P.OPTION_RES, ['exceptions']],
        [P.JOB_ASSIGN_UNIQ, ['H:x:1', 'f', 'u', 'd']],
        [P.JOB_ASSIGN_ALL, ['H:x:1', 'f', 'u', 'r', 'd']],
        [P.STATUS_RES_UNIQUE, ['u', '0', '0', '0', '0', '0']],
      ];
      for (const [type, args] of sent) {
        peer.sendWithMagic('REQ', type, ...args);
        expect(await peer.expect(P.ERROR)).toEqual(['INVALID_COMMAND', 'Command not expected']);
      }
      peer.send(P.ECHO_REQ, 'still here');
      expect(await peer.expect(P.ECHO_RES)).toEqual(['still here']);
    },
  },
  {
    title: 'any packet with response magic gets ERROR INVALID_MAGIC and the connection stays',
    async run(context) {
      const peer = await context.peer();
      const sent: [number, string[]][] = [
        [P.SUBMIT_JOB, ['f', 'u', 'd']],
        [P.GRAB_JOB, []],
        [P.ECHO_REQ, ['x']],
        [P.NOOP, []],
        [P.UNUSED, []],
        [P.CAN_DO, ['f']],
      ];
      for (const [type, args] of sent) {
        peer.sendWithMagic('RES', type, ...args);
        expect(await peer.expect(P.ERROR)).toEqual(['INVALID_MAGIC', 'Request magic expected']);
      }
      expect(await context.admin('workers', true)).not.toMatch(/ : f\n/);
      peer.send(P.ECHO_REQ, 'still here');
      expect(await peer.expect(P.ECHO_RES)).toEqual(['still here']);
    },
  },
  {
    title: 'an unknown packet type closes the connection; other connections and jobs are untouched',
    async run(context) {
      const client = await context.peer();
      const handle = await submit(client, P.SUBMIT_JOB_BG, 'kept', '', 'x');
      for (const type of [0, 44, 0xffff]) {
        const vandal = await context.peer();
        vandal.sendWithMagic('REQ', type);
        expect(await vandal.closedByServer()).toBe(true);
      }
      client.send(P.GET_STATUS, handle);
      expect(await client.expect(P.STATUS_RES)).toEqual([handle, '1', '0', '0', '0']);
    },
  },
  {
    title: 'an argument up to 8191 bytes (8192 as the last) is taken; a longer one closes the connection',
    async run(context) {
      // Over libgearman's 512-byte function names, so sent without the encoder's checks.
      const client = await context.peer();
      client.sendUnchecked(P.SUBMIT_JOB_BG, 'f'.repeat(8191), 'u'.repeat(64), 'x');
      await client.expect(P.JOB_CREATED);
      expect(await statusRow(context, 'f'.repeat(8191))).toBe(`${'f'.repeat(8191)}\t1\t0\t0`);
      const worker = await context.peer();
      worker.sendUnchecked(P.CAN_DO, 'w'.repeat(8192));
      expect(await worker.sync()).toEqual([]);
      worker.send(P.ECHO_REQ, 'e'.repeat(100_000));
      expect(await worker.expect(P.ECHO_RES)).toEqual(['e'.repeat(100_000)]);
      client.sendUnchecked(P.SUBMIT_JOB_BG, 'f'.repeat(8192), '', 'x');
      expect(await client.closedByServer()).toBe(true);
      worker.sendUnchecked(P.CAN_DO, 'w'.repeat(8193));
      expect(await worker.closedByServer()).toBe(true);
      const unique = await context.peer();
      unique.sendUnchecked(P.SUBMIT_JOB_BG, 'f', 'u'.repeat(8192), 'x');
      expect(await unique.closedByServer()).toBe(true);
    },
  },
  {
    title: 'a unique id over 64 bytes is refused in every submit form; the empty function name is a function',
    async run(context) {
      const client = await context.peer();
      for (const type of [P.SUBMIT_JOB, P.SUBMIT_JOB_BG, P.SUBMIT_JOB_HIGH, P.SUBMIT_JOB_LOW_BG]) {
        client.sendUnchecked(type, 'long', 'u'.repeat(65), 'x');
        expect(await client.expect(P.ERROR)).toEqual(['ARGUMENT_TOO_LARGE', 'Unique value too large']);
      }
      expect(await statusRow(context, 'long')).toBeUndefined();
      const handle = await submit(client, P.SUBMIT_JOB_BG, '', 'u', 'x');
      await submit(client, P.SUBMIT_JOB, '', '', 'y');
      expect(await statusRow(context, '')).toBe('\t2\t0\t0');
      const worker = await context.worker('');
      worker.send(P.GRAB_JOB_UNIQ);
      expect(await worker.expect(P.JOB_ASSIGN_UNIQ)).toEqual([handle, '', 'u', 'x']);
    },
  },
  {
    title: 'a job for a function nobody serves is queued and listed by status, prioritystatus, show jobs and show unique jobs',
    async run(context) {
      const client = await context.peer();
      const handle = await submit(client, P.SUBMIT_JOB, 'nobody', '', 'x');
      expect(await context.admin('status', true)).toBe('nobody\t1\t0\t0\n.\n');
      expect(await context.admin('prioritystatus', true)).toBe('nobody\t0\t1\t0\t0\n.\n');
      // JOB_QUEUED is 1 only for background jobs; an empty unique shows as an empty line.
      expect(await context.admin('show jobs', true)).toBe(`${handle}\t0\t0\t0\n.\n`);
      expect(await context.admin('show unique jobs', true)).toBe('\n.\n');
    },
  },
  {
    title: 'GET_STATUS and GET_STATUS_UNIQUE: exact STATUS_RES fields for unknown, queued and running jobs',
    async run(context) {
      const client = await context.peer();
      client.send(P.GET_STATUS, 'H:nowhere:1');
      expect(await client.expect(P.STATUS_RES)).toEqual(['H:nowhere:1', '0', '0', '0', '0']);
      client.send(P.GET_STATUS, '');
      expect(await client.expect(P.STATUS_RES)).toEqual(['', '0', '0', '0', '0']);
      client.send(P.GET_STATUS, 'h'.repeat(63));
      expect(await client.expect(P.STATUS_RES)).toEqual(['h'.repeat(63), '0', '0', '0', '0']);
      client.send(P.GET_STATUS_UNIQUE, '');
      expect(await client.expect(P.STATUS_RES_UNIQUE)).toEqual(['', '0', '0', '0', '0', '0']);
      client.send(P.GET_STATUS_UNIQUE, 'u'.repeat(63));
      expect(await client.expect(P.STATUS_RES_UNIQUE)).toEqual(['u'.repeat(63), '0', '0', '0', '0', '0']);
      const handle = await submit(client, P.SUBMIT_JOB, 'st', 'uq', 'x');
      client.send(P.GET_STATUS, handle);
      expect(await client.expect(P.STATUS_RES)).toEqual([handle, '1', '0', '0', '0']);
      // The handle is read up to a NUL, and answered so.
      client.sendUnchecked(P.GET_STATUS, handle, 'junk');
      expect(await client.expect(P.STATUS_RES)).toEqual([handle, '1', '0', '0', '0']);
      const worker = await context.worker('st');
      worker.send(P.GRAB_JOB);
      await worker.expect(P.JOB_ASSIGN);
      client.send(P.GET_STATUS, handle);
      expect(await client.expect(P.STATUS_RES)).toEqual([handle, '1', '1', '0', '0']);
      client.send(P.GET_STATUS_UNIQUE, 'uq');
      expect(await client.expect(P.STATUS_RES_UNIQUE)).toEqual(['uq', '1', '1', '0', '0', '1']);
      // Progress is kept as gearmand's (uint32_t)atoi, the denominator read from its first 10 bytes.
      const progress: [string, string, string, string][] = [
        ['3', '7', '3', '7'],
        [' 12abc', 'x9', '12', '0'],
        ['-1', '99999999999', '4294967295', '1410065407'],
        ['4294967297', '2147483648', '1', '2147483648'],
      ];
      for (const [numerator, denominator, storedNumerator, storedDenominator] of progress) {
        worker.send(P.WORK_STATUS, handle, numerator, denominator);
        expect(await client.expect(P.WORK_STATUS)).toEqual([handle, numerator, denominator]);
        client.send(P.GET_STATUS, handle);
        expect(await client.expect(P.STATUS_RES)).toEqual([handle, '1', '1', storedNumerator, storedDenominator]);
      }
      const joiner = await context.peer();
      expect(await submit(joiner, P.SUBMIT_JOB, 'st', 'uq', 'x')).toBe(handle);
      client.send(P.GET_STATUS_UNIQUE, 'uq');
      expect(await client.expect(P.STATUS_RES_UNIQUE)).toEqual(['uq', '1', '1', '1', '2147483648', '2']);
      // The same unique under another function: GET_STATUS_UNIQUE reports the newest job.
      await submit(client, P.SUBMIT_JOB_BG, 'other', 'uq', 'x');
      client.send(P.GET_STATUS_UNIQUE, 'uq');
      expect(await client.expect(P.STATUS_RES_UNIQUE)).toEqual(['uq', '1', '0', '0', '0', '0']);
    },
  },
  {
    title: "WORK_STATUS numbers are read as C's strtol reads them: only ASCII white space before the digits",
    async run(context) {
      const client = await context.peer();
      const handle = await submit(client, P.SUBMIT_JOB, 'spaces', '', 'x');
      const worker = await context.worker('spaces');
      worker.send(P.GRAB_JOB);
      await worker.expect(P.JOB_ASSIGN);
      // \v and \f are white space to C; the latin1 no-break space (0xa0) is not.
      const progress: [string, string, string, string][] = [
        ['\v\f 7', '\t\r\n9', '7', '9'],
        ['\xa012', '\xa034', '0', '0'],
      ];
      for (const [numerator, denominator, storedNumerator, storedDenominator] of progress) {
        worker.send(P.WORK_STATUS, Buffer.from(handle, 'latin1'), Buffer.from(numerator, 'latin1'), Buffer.from(denominator, 'latin1'));
        expect(await client.expect(P.WORK_STATUS)).toEqual([handle, numerator, denominator]);
        client.send(P.GET_STATUS, handle);
        expect(await client.expect(P.STATUS_RES)).toEqual([handle, '1', '1', storedNumerator, storedDenominator]);
      }
    },
  },
  {
    title: 'GET_STATUS with a handle of 64 bytes or more closes the connection',
    async run(context) {
      const peer = await context.peer();
      peer.send(P.GET_STATUS, 'h'.repeat(64));
      expect(await peer.closedByServer()).toBe(true);
    },
  },
  {
    title: 'GET_STATUS_UNIQUE with a unique of 64 bytes or more closes the connection, even for a known job',
    async run(context) {
      const peer = await context.peer();
      await submit(peer, P.SUBMIT_JOB_BG, 'f', 'u'.repeat(64), 'x');
      peer.send(P.GET_STATUS_UNIQUE, 'u'.repeat(64));
      expect(await peer.closedByServer()).toBe(true);
    },
  },
  {
    title: 'ECHO_REQ with an empty payload, NUL bytes and 1 MiB',
    async run(context) {
      const peer = await context.peer();
      peer.send(P.ECHO_REQ, '');
      expect(await peer.expect(P.ECHO_RES)).toEqual(['']);
      peer.send(P.ECHO_REQ, 'a\0b\0');
      expect(await peer.expect(P.ECHO_RES)).toEqual(['a\0b\0']);
      const big = Buffer.alloc(1 << 20, 'z').toString('latin1');
      peer.send(P.ECHO_REQ, big);
      expect(await peer.expect(P.ECHO_RES)).toEqual([big]);
    },
  },
  {
    title: 'CAN_DO twice counts twice (workers lists newest first, status counts each); CANT_DO drops every registration',
    async run(context) {
      const worker = await context.peer();
      worker.send(P.SET_CLIENT_ID, 'dup');
      for (const fn of ['a', 'b', 'c', 'b']) worker.send(P.CAN_DO, fn);
      worker.send(P.CANT_DO, 'never-registered');
      await worker.sync();
      const row = async () => (await context.admin('workers', true)).split('\n').find((line) => line.includes(' dup :'));
      expect(await row()).toMatch(/^\d+ 127\.0\.0\.1 dup : b c b a$/);
      expect(await statusRow(context, 'b')).toBe('b\t0\t0\t2');
      worker.send(P.CAN_DO_TIMEOUT, 'b', '5');
      await worker.sync();
      expect(await statusRow(context, 'b')).toBe('b\t0\t0\t3');
      worker.send(P.CANT_DO, 'b');
      await worker.sync();
      expect(await row()).toMatch(/ dup : c a$/);
      expect(await statusRow(context, 'b')).toBe('b\t0\t0\t0');
      worker.send(P.CAN_DO, 'a');
      await worker.close();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await statusRow(context, 'a')).toBe('a\t0\t0\t0');
    },
  },
  {
    title: 'CANT_DO and RESET_ABILITIES while holding jobs requeue them newest first, one retry each; the worker then gets JOB_NOT_FOUND',
    async run(context) {
      const client = await context.peer();
      const first = await submit(client, P.SUBMIT_JOB, 'held', '', '1');
      const second = await submit(client, P.SUBMIT_JOB, 'held', '', '2');
      const worker = await context.worker('held');
      worker.send(P.GRAB_JOB);
      worker.send(P.GRAB_JOB);
      await worker.expect(P.JOB_ASSIGN);
      await worker.expect(P.JOB_ASSIGN);
      worker.send(P.CANT_DO, 'held');
      await worker.sync();
      expect(await context.admin('show jobs', true)).toBe(`${first}\t1\t0\t0\n${second}\t1\t0\t0\n.\n`);
      expect(await statusRow(context, 'held')).toBe('held\t2\t0\t0');
      worker.send(P.WORK_COMPLETE, first, 'late');
      expect(await worker.expect(P.ERROR)).toEqual(['JOB_NOT_FOUND', 'Job given in work result not found']);
      const next = await context.worker('held');
      next.send(P.GRAB_JOB);
      expect((await next.expect(P.JOB_ASSIGN))[0]).toBe(second);
      next.send(P.RESET_ABILITIES);
      await next.sync();
      next.send(P.WORK_DATA, second, 'late');
      expect(await next.expect(P.ERROR)).toEqual(['JOB_NOT_FOUND', 'Job does not exist on server']);
      expect(await context.admin('show jobs', true)).toBe(`${first}\t1\t0\t0\n${second}\t2\t0\t0\n.\n`);
    },
  },
  {
    title: 'GRAB_JOB gets JOB_ASSIGN, GRAB_JOB_UNIQ JOB_ASSIGN_UNIQ, GRAB_JOB_ALL JOB_ASSIGN_ALL only for a reduce job',
    async run(context) {
      const client = await context.peer();
      const handles = [
        await submit(client, P.SUBMIT_JOB_BG, 'grab', 'u1', 'd1'),
        await submit(client, P.SUBMIT_JOB_BG, 'grab', '', 'd2'),
        await submit(client, P.SUBMIT_JOB_BG, 'grab', 'u3', 'd3'),
      ];
      client.send(P.SUBMIT_REDUCE_JOB_BACKGROUND, 'grab', 'u4', 'red', 'agg', 'd4');
      handles.push((await client.expect(P.JOB_CREATED))[0]);
      client.send(P.SUBMIT_REDUCE_JOB_BACKGROUND, 'grab', 'u5', 'red', 'agg', 'd5');
      handles.push((await client.expect(P.JOB_CREATED))[0]);
      const worker = await context.worker('grab');
      worker.send(P.GRAB_JOB);
      expect(await worker.expect(P.JOB_ASSIGN)).toEqual([handles[0], 'grab', 'd1']);
      worker.send(P.GRAB_JOB_UNIQ);
      expect(await worker.expect(P.JOB_ASSIGN_UNIQ)).toEqual([handles[1], 'grab', '', 'd2']);
      worker.send(P.GRAB_JOB_ALL);
      expect(await worker.expect(P.JOB_ASSIGN_UNIQ)).toEqual([handles[2], 'grab', 'u3', 'd3']);
      worker.send(P.GRAB_JOB_ALL);
      expect(await worker.expect(P.JOB_ASSIGN_ALL)).toEqual([handles[3], 'grab', 'u4', 'red', 'd4']);
      worker.send(P.GRAB_JOB_UNIQ);
      expect(await worker.expect(P.JOB_ASSIGN_UNIQ)).toEqual([handles[4], 'grab', 'u5', 'd5']);
      worker.send(P.GRAB_JOB_ALL);
      await worker.expect(P.NO_JOB);
    },
  },
  {
    title: 'WORK_* are relayed byte for byte; after completion each gets its JOB_NOT_FOUND text',
    async run(context) {
      const client = await context.peer();
      const handle = await submit(client, P.SUBMIT_JOB, 'relay', '', 'x');
      const worker = await context.worker('relay');
      worker.send(P.GRAB_JOB);
      await worker.expect(P.JOB_ASSIGN);
      worker.send(P.WORK_DATA, handle, '');
      worker.send(P.WORK_WARNING, handle, 'a\0b');
      worker.send(P.WORK_STATUS, handle, '', '');
      worker.send(P.WORK_COMPLETE, handle, 'r\0r');
      expect(await client.next()).toEqual({ type: 'WORK_DATA', args: [handle, ''] });
      expect(await client.next()).toEqual({ type: 'WORK_WARNING', args: [handle, 'a\0b'] });
      expect(await client.next()).toEqual({ type: 'WORK_STATUS', args: [handle, '', ''] });
      expect(await client.next()).toEqual({ type: 'WORK_COMPLETE', args: [handle, 'r\0r'] });
      const errors: [PacketType, string[], string][] = [
        [P.WORK_STATUS, [handle, '1', '2'], 'Job given in work result not found'],
        [P.WORK_DATA, [handle, 'x'], 'Job does not exist on server'],
        [P.WORK_WARNING, [handle, 'x'], 'Job does not exist on server'],
        [P.WORK_COMPLETE, [handle, 'x'], 'Job given in work result not found'],
        [P.WORK_FAIL, [handle], 'Job given in work result not found'],
        [P.WORK_EXCEPTION, [handle, 'x'], 'An exception was received for a job that does not exist'],
      ];
      for (const [type, args, text] of errors) {
        worker.send(type, ...args);
        expect(await worker.expect(P.ERROR)).toEqual(['JOB_NOT_FOUND', text]);
      }
      worker.sendUnchecked(P.WORK_FAIL, 'h'.repeat(63));
      expect(await worker.expect(P.ERROR)).toEqual(['JOB_NOT_FOUND', 'Job given in work result not found']);
      worker.sendUnchecked(P.WORK_FAIL, 'h'.repeat(64));
      expect(await worker.expect(P.ERROR)).toEqual([
        'ARGUMENT_TOO_LARGE',
        'Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf',
      ]);
      worker.sendUnchecked(P.WORK_COMPLETE, 'h'.repeat(65), 'x');
      expect(await worker.expect(P.ERROR)).toEqual(['JOB_NOT_FOUND', 'Job given in work result not found']);
      expect(await client.sync()).toEqual([]);
    },
  },
  {
    title: 'WORK_FAIL is found by its handle up to a NUL and relayed as sent',
    async run(context) {
      const client = await context.peer();
      const handle = await submit(client, P.SUBMIT_JOB, 'failnul', '', 'x');
      const worker = await context.worker('failnul');
      worker.send(P.GRAB_JOB);
      await worker.expect(P.JOB_ASSIGN);
      worker.sendUnchecked(P.WORK_FAIL, handle, 'junk');
      expect(await client.expect(P.WORK_FAIL)).toEqual([`${handle}\0junk`]);
    },
  },
  {
    title: 'WORK_FAIL and OPTION_REQ with long bytes after the NUL: relayed and echoed whole',
    async run(context) {
      const client = await context.peer();
      const junk = 'j'.repeat(200);
      client.sendUnchecked(P.OPTION_REQ, 'exceptions', junk);
      expect(await client.expect(P.OPTION_RES)).toEqual([`exceptions\0${junk}`]);
      const handle = await submit(client, P.SUBMIT_JOB, 'failjunk', '', 'x');
      const worker = await context.worker('failjunk');
      worker.send(P.GRAB_JOB);
      await worker.expect(P.JOB_ASSIGN);
      worker.sendUnchecked(P.WORK_FAIL, handle, junk);
      expect(await client.expect(P.WORK_FAIL)).toEqual([`${handle}\0${junk}`]);
      expect(await worker.sync()).toEqual([]);
    },
  },
  {
    title: 'OPTION_REQ: exceptions in any case, read up to a NUL, echoed as sent; anything else UNKNOWN_OPTION',
    async run(context) {
      const peer = await context.peer();
      peer.send(P.OPTION_REQ, 'EXCEPTIONS');
      expect(await peer.expect(P.OPTION_RES)).toEqual(['EXCEPTIONS']);
      peer.sendUnchecked(P.OPTION_REQ, 'exceptions', 'x');
      expect(await peer.expect(P.OPTION_RES)).toEqual(['exceptions\0x']);
      for (const option of ['', 'exceptions ', 'e'.repeat(100)]) {
        peer.sendUnchecked(P.OPTION_REQ, option);
        expect(await peer.expect(P.ERROR)).toEqual(['UNKNOWN_OPTION', 'Server does not recognize given option']);
      }
    },
  },
  {
    title: 'the exceptions server setting relays WORK_EXCEPTION to every client',
    options: { exceptions: true },
    async run(context) {
      const client = await context.peer();
      const handle = await submit(client, P.SUBMIT_JOB, 'boom-all', '', 'x');
      const worker = await context.worker('boom-all');
      worker.send(P.GRAB_JOB);
      await worker.expect(P.JOB_ASSIGN);
      worker.send(P.WORK_EXCEPTION, handle, 'it broke');
      expect(await client.expect(P.WORK_EXCEPTION)).toEqual([handle, 'it broke']);
    },
  },
  {
    title: 'SET_CLIENT_ID shows in workers up to a NUL; an empty id shows empty; clients show with no functions',
    async run(context) {
      const named = await context.peer();
      named.sendUnchecked(P.SET_CLIENT_ID, 'cut', 'here');
      await named.sync();
      const empty = await context.peer();
      empty.sendUnchecked(P.SET_CLIENT_ID, '');
      await empty.sync();
      const rows = (await context.admin('workers', true)).split('\n');
      expect(rows).toContainEqual(expect.stringMatching(/^\d+ 127\.0\.0\.1 cut :$/));
      expect(rows).toContainEqual(expect.stringMatching(/^\d+ 127\.0\.0\.1 {2}:$/));
      expect(rows).toContainEqual(expect.stringMatching(/^\d+ 127\.0\.0\.1 - :$/));
      expect(rows[rows.length - 2]).toBe('.');
    },
  },
  {
    title: 'job retries: jobs lost twice fail on the second loss; background ones simply leave',
    options: { jobRetries: 2 },
    async run(context) {
      const client = await context.peer();
      const background = await submit(client, P.SUBMIT_JOB_BG, 'twice', 'u', 'x');
      const foreground = await submit(client, P.SUBMIT_JOB, 'twice', 'v', 'y');
      const first = await context.worker('twice');
      first.send(P.GRAB_JOB);
      first.send(P.GRAB_JOB);
      await first.expect(P.JOB_ASSIGN);
      await first.expect(P.JOB_ASSIGN);
      await first.close();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await context.admin('show jobs', true)).toBe(`${background}\t1\t0\t1\n${foreground}\t1\t0\t0\n.\n`);
      const second = await context.worker('twice');
      second.send(P.GRAB_JOB);
      // Requeued newest first: the foreground job is now ahead.
      expect((await second.expect(P.JOB_ASSIGN))[0]).toBe(foreground);
      second.send(P.GRAB_JOB);
      expect((await second.expect(P.JOB_ASSIGN))[0]).toBe(background);
      await second.close();
      expect(await client.expect(P.WORK_FAIL)).toEqual([foreground]);
      expect(await context.admin('show jobs', true)).toBe('.\n');
      expect(await statusRow(context, 'twice')).toBe('twice\t0\t0\t0');
    },
  },
  {
    title: 'admin lines are split as gearmand splits them: case, \\r\\n, leading and trailing spaces, word counts',
    async run(context) {
      const client = await context.peer();
      const handle = await submit(client, P.SUBMIT_JOB_BG, 'adm2', 'uu', 'x');
      const status = 'adm2\t1\t0\t0\n.\n';
      expect(await context.admin('Status\r', true)).toBe(status);
      expect(await context.admin('STATUS extra words', true)).toBe(status);
      expect(await context.admin('status a b c d', true)).toBe(status);
      expect(await context.admin('SHOW JOBS', true)).toBe(`${handle}\t0\t0\t1\n.\n`);
      expect(await context.admin('Show Unique Jobs', true)).toBe('uu\n.\n');
      expect(await context.admin('')).toBe('ERR UNKNOWN_COMMAND Unknown+server+command\r\n');
      expect(await context.admin('\r')).toBe('ERR UNKNOWN_COMMAND Unknown+server+command\r\n');
      expect(await context.admin('  status')).toBe('ERR UNKNOWN_COMMAND Unknown+server+command\r\n');
      expect(await context.admin('\tstatus')).toBe('ERR UNKNOWN_COMMAND Unknown+server+command\tstatus\r\n');
      expect(await context.admin('FROB')).toBe('ERR UNKNOWN_COMMAND Unknown+server+commandFROB\r\n');
      expect(await context.admin('show jobs ')).toBe('ERR UNKNOWN_SHOW_ARGUMENTS\r\n');
      expect(await context.admin('show unique')).toBe('ERR UNKNOWN_SHOW_ARGUMENTS\r\n');
      expect(await context.admin('show')).toBe('ERR UNKNOWN_COMMAND Unknown+server+commandshow\r\n');
      expect(await context.admin('cancel')).toBe('ERR UNKNOWN_COMMAND Unknown+server+commandcancel\r\n');
      expect(await context.admin('cancel job')).toBe('ERR UNKNOWN_COMMAND Unknown+server+commandcancel\r\n');
      expect(await context.admin(`cancel job ${handle} `)).toBe('ERR UNKNOWN_ERROR\r\n');
      expect(await context.admin('cancel foo bar')).toBe('ERR UNKNOWN_ERROR\r\n');
      expect(await context.admin('create')).toBe(
        'ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+create\r\n',
      );
      expect(await context.admin('create function a b')).toBe(
        'ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+create\r\n',
      );
      expect(await context.admin('drop')).toBe('ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+drop\r\n');
      expect(await context.admin('shutdown graceful')).toBe('ERR UNKNOWN_COMMAND Unknown+server+commandshutdown\r\n');
      expect(await context.admin('prioritystatus x', true)).toBe('adm2\t0\t1\t0\t0\n.\n');
      expect(await context.admin('show jobs', true)).toBe(`${handle}\t0\t0\t1\n.\n`);
    },
  },
  {
    title: 'an admin line of six words or more closes the connection',
    async run(context) {
      for (const line of ['status a b c d e', 'maxqueue f 1 2 3 4', 'status    a b c d  ']) {
        const peer = await context.peer();
        peer.sendBytes(`${line}\n`);
        expect(await peer.closedByServer()).toBe(true);
      }
      expect(await context.admin('version')).toMatch(/^OK /);
    },
  },
  {
    title: 'maxqueue with one, two or three limits (one applies to every priority; 0, negative or not a number is none)',
    async run(context) {
      const client = await context.peer();
      await submit(client, P.SUBMIT_JOB_BG, 'mq', '', 'x');
      const refused = async (type: PacketType) => {
        client.send(type, 'mq', '', 'y');
        const packet = await client.next();
        return packet.type === 'ERROR' ? packet.args : undefined;
      };
      expect(await context.admin('maxqueue mq 2')).toBe('OK\r\n');
      expect(await refused(P.SUBMIT_JOB_HIGH_BG)).toBeUndefined();
      expect(await refused(P.SUBMIT_JOB_LOW_BG)).toEqual(['QUEUE_ERROR', 'Job queue is full']);
      // Two numbers: HIGH and NORMAL limits, LOW none. Limits compare with every job of the function.
      expect(await context.admin('maxqueue mq 2 9')).toBe('OK\r\n');
      expect(await refused(P.SUBMIT_JOB_BG)).toBeUndefined();
      expect(await refused(P.SUBMIT_JOB_HIGH_BG)).toEqual(['QUEUE_ERROR', 'Job queue is full']);
      expect(await refused(P.SUBMIT_JOB_LOW_BG)).toBeUndefined();
      expect(await context.admin('maxqueue mq 2 3 4')).toBe('OK\r\n');
      expect(await refused(P.SUBMIT_JOB_HIGH_BG)).toEqual(['QUEUE_ERROR', 'Job queue is full']);
      expect(await refused(P.SUBMIT_JOB_BG)).toEqual(['QUEUE_ERROR', 'Job queue is full']);
      expect(await refused(P.SUBMIT_JOB_LOW_BG)).toEqual(['QUEUE_ERROR', 'Job queue is full']);
      expect(await context.admin('maxqueue mq 0')).toBe('OK\r\n');
      expect(await refused(P.SUBMIT_JOB_LOW_BG)).toBeUndefined();
      expect(await context.admin('maxqueue mq -5')).toBe('OK\r\n');
      expect(await context.admin('maxqueue mq abc')).toBe('OK\r\n');
      expect(await refused(P.SUBMIT_JOB_BG)).toBeUndefined();
      expect(await context.admin('maxqueue unknown-function 3')).toBe('OK\r\n');
      expect(await statusRow(context, 'unknown-function')).toBeUndefined();
      expect(await statusRow(context, 'mq')).toBe('mq\t6\t0\t0');
    },
  },
  {
    title: 'admin commands and binary packets interleave on one connection, answered in order',
    async run(context) {
      const peer = await context.peer();
      const raw: string[] = [];
      const socket = (peer as unknown as { socket: import('node:net').Socket }).socket;
      socket.on('data', (chunk: Buffer) => raw.push(chunk.toString('latin1')));
      const echo = Buffer.concat([Buffer.from('\0REQ\0\0\0\x10\0\0\0\x01', 'latin1'), Buffer.from('x')]);
      peer.sendBytes(Buffer.concat([Buffer.from('status\n'), echo, Buffer.from('show jobs\n'), echo]));
      expect(await peer.expect(P.ECHO_RES)).toEqual(['x']);
      expect(await peer.expect(P.ECHO_RES)).toEqual(['x']);
      expect(raw.join('')).toBe('.\n\0RES\0\0\0\x11\0\0\0\x01x.\n\0RES\0\0\0\x11\0\0\0\x01x');
    },
  },
  {
    title: 'status lists a function whose workers left with 0 workers',
    async run(context) {
      const worker = await context.worker('left');
      await worker.close();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await statusRow(context, 'left')).toBe('left\t0\t0\t0');
      expect((await context.admin('prioritystatus', true)).split('\n')).toContain('left\t0\t0\t0\t0');
    },
  },
  {
    title: 'a reduce job: a reducer name over 64 bytes gets ERROR ARGUMENT_TOO_LARGE, 64 bytes is taken',
    async run(context) {
      const client = await context.peer();
      client.send(P.SUBMIT_REDUCE_JOB_BACKGROUND, 'mapper', 'a', 'r'.repeat(65), '', 'x');
      expect(await client.expect(P.ERROR)).toEqual(['ARGUMENT_TOO_LARGE', 'Unique value too large']);
      client.send(P.SUBMIT_REDUCE_JOB, 'mapper', 'b', 'r'.repeat(65), '', 'x');
      expect(await client.expect(P.ERROR)).toEqual(['ARGUMENT_TOO_LARGE', 'Unique value too large']);
      client.send(P.SUBMIT_REDUCE_JOB_BACKGROUND, 'mapper', 'c', 'r'.repeat(64), '', 'x');
      const [handle] = await client.expect(P.JOB_CREATED);
      const worker = await context.worker('mapper');
      worker.send(P.GRAB_JOB_ALL);
      expect(await worker.expect(P.JOB_ASSIGN_ALL)).toEqual([handle, 'mapper', 'c', 'r'.repeat(64), 'x']);
    },
  },
  {
    title: 'CAN_DO_TIMEOUT: a timeout that is not a number counts as none; one out of strtol range closes the connection',
    oursOnly: 'gearmand 1.1.20 crashes on an out-of-range timeout; 2.0 drops the connection',
    async run(context) {
      const worker = await context.peer();
      worker.send(P.SET_CLIENT_ID, 'timeouts');
      worker.send(P.CAN_DO_TIMEOUT, 'text', 'abc');
      worker.send(P.CAN_DO_TIMEOUT, 'negative', '-5');
      expect(await worker.sync()).toEqual([]);
      const rows = (await context.admin('workers', true)).split('\n');
      expect(rows).toContainEqual(expect.stringMatching(/ timeouts : negative text$/));
      worker.send(P.CAN_DO_TIMEOUT, 'huge', '99999999999999999999');
      expect(await worker.closedByServer()).toBe(true);
      expect(await statusRow(context, 'text')).toBe('text\t0\t0\t0');
    },
  },
  {
    title: "status, prioritystatus, show jobs and show unique jobs list in gearmand's hash-table order, byte for byte",
    async run(context) {
      const client = await context.peer();
      // Names as byte strings (latin1), some with a byte over 127: gearmand hashes signed chars.
      const names = Array.from({ length: 12 }, (_, i) => `order-${i}${i % 3 === 0 ? '\xe9' : ''}`);
      const jobs: { handle: string; unique: string }[] = [];
      for (const [i, name] of names.entries()) {
        const unique = `uq-${i}`;
        client.send(i % 2 ? P.SUBMIT_JOB_BG : P.SUBMIT_JOB_HIGH_BG, Buffer.from(name, 'latin1'), unique, 'x');
        jobs.push({ handle: (await client.expect(P.JOB_CREATED))[0], unique });
      }
      const fnOrder = inGearmandOrder(names, (name) => name);
      expect(await context.admin('status', true)).toBe(fnOrder.map((name) => `${name}\t1\t0\t0\n`).join('') + '.\n');
      const high = (name: string) => (names.indexOf(name) % 2 ? '0\t1' : '1\t0');
      expect(await context.admin('prioritystatus', true)).toBe(fnOrder.map((name) => `${name}\t${high(name)}\t0\t0\n`).join('') + '.\n');
      const byHandle = inGearmandOrder(jobs, (job) => job.handle);
      expect(await context.admin('show jobs', true)).toBe(byHandle.map((job) => `${job.handle}\t0\t0\t1\n`).join('') + '.\n');
      const byUnique = inGearmandOrder(jobs, (job) => job.unique);
      expect(await context.admin('show unique jobs', true)).toBe(byUnique.map((job) => `${job.unique}\n`).join('') + '.\n');
    },
  },
  {
    title: 'admin lines: bytes kept as sent, words read up to a NUL, 8191 bytes before the newline at most',
    async run(context) {
      const raw = (line: string) => adminQuery(context.port, line, false);
      expect(await raw('st\xe9tus')).toBe('ERR UNKNOWN_COMMAND Unknown+server+commandst\xe9tus\r\n');
      expect(await raw('sta\0tus')).toBe('ERR UNKNOWN_COMMAND Unknown+server+commandsta\r\n');
      expect(await context.admin('status\0junk', true)).toBe('.\n');
      expect(await raw('x'.repeat(8191))).toBe(`ERR UNKNOWN_COMMAND Unknown+server+command${'x'.repeat(8191)}\r\n`);
      expect(await raw(`${'x'.repeat(8190)}\r`)).toBe(`ERR UNKNOWN_COMMAND Unknown+server+command${'x'.repeat(8190)}\r\n`);
      for (const line of ['x'.repeat(8192), `status ${'x'.repeat(8185)}`, `${'x'.repeat(8191)}\r`]) {
        const peer = await context.peer();
        peer.sendBytes(Buffer.from(`${line}\n`, 'latin1'));
        expect(await peer.closedByServer()).toBe(true);
      }
    },
  },
];
