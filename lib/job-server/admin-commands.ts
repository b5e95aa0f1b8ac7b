import {
  asciiLowerCase,
  formatAdminError,
  formatAdminListing,
  formatAdminOk,
  formatBatchRow,
  formatJobRow,
  formatPriorityStatusRow,
  formatStatusRow,
  formatWorkerRow,
  parseAdminCommand,
} from '../protocol/admin.js';
import { adminRefusal, mayRunAdminCommand, type AdminAccess } from './admin-access.js';
import type { GearmanFunction } from './gearman-function.js';
import { inGearmandOrder } from './gearmand-order.js';
import { atoi } from './gearmand-limits.js';
import { Priority } from './job.js';
import type { BatchCoordinator } from './batch-coordinator.js';
import type { JobBroker } from './job-broker.js';
import type { JobResults, JobState } from './job-results.js';

export interface AdminContext {
  readonly broker: JobBroker;
  readonly version: string;
  readonly verbose: string;
  /** Kept results (absent when the server keeps none): `show job`, `show results`. */
  readonly results?: JobResults;
  /** Running batches: `cancel job` of a batch handle. */
  readonly batches?: BatchCoordinator;
}

/** `show batches` lists the oldest running batches up to this many, so its reply stays small. */
const MAX_BATCHES_LISTED = 1000;
const INVALID_ARGUMENTS = 'An incomplete set of arguments was sent to this command ';

/** Every command this server knows; one the peer may not run gets PERMISSION_DENIED, any other UNKNOWN_COMMAND. */
export const ADMIN_COMMANDS: ReadonlySet<string> = new Set([
  'workers',
  'status',
  'prioritystatus',
  'maxqueue',
  'show',
  'cancel',
  'create',
  'drop',
  'pause',
  'resume',
  'getpid',
  'verbose',
  'version',
]);

/**
 * The text admin protocol on the job server's port, with gearmand's replies byte for byte
 * (including its mix of `\r\n` and `\n` endings) so `gearadmin` and scripts parse them.
 * `access` is what the peer may run (admin-access.ts); a command it may not run is refused.
 */
export function runAdminCommand(context: AdminContext, line: string, access: AdminAccess): string {
  const { command, word, args } = parseAdminCommand(line);
  // Read-only peers run the read-only commands only: a command added to the switch below is
  // refused to them until admin-access.ts says it reads nothing private.
  if (!mayRunAdminCommand(command, access, args)) return ADMIN_COMMANDS.has(command) ? adminRefusal(word) : unknownCommand(word);
  const broker = context.broker;
  switch (command) {
    case 'workers':
      // gearmand lists the newest connection first, and each one's newest registration first
      // (a function registered twice shows twice).
      return formatAdminListing(
        [...broker.peers()].reverse().map((state) =>
          formatWorkerRow({
            fd: state.peer.id,
            ip: state.peer.host,
            clientId: state.peer.clientId,
            functions: state
              .registrations()
              .map((fn) => fn.name)
              .reverse(),
          }),
        ),
      );
    case 'status':
      return formatAdminListing(
        functionsInGearmandOrder(broker).map((fn) =>
          formatStatusRow({ name: fn.name, total: fn.total, running: fn.running, workers: fn.registrations }),
        ),
      );
    case 'prioritystatus':
      return formatAdminListing(
        functionsInGearmandOrder(broker).map((fn) =>
          formatPriorityStatusRow({
            name: fn.name,
            high: fn.waiting(Priority.HIGH),
            normal: fn.waiting(Priority.NORMAL),
            low: fn.waiting(Priority.LOW),
            workers: fn.registrations,
          }),
        ),
      );
    case 'maxqueue':
      return maxQueue(broker, word, args);
    case 'show': {
      if (args.length === 0) break;
      const [what, which] = args;
      if (args.length === 2 && asciiLowerCase(what) === 'unique' && asciiLowerCase(which) === 'jobs') {
        return formatAdminListing(inGearmandOrder(broker.allJobs(), (job) => job.unique).map((job) => job.unique));
      }
      if (args.length === 2 && asciiLowerCase(what) === 'job' && context.results) {
        return formatAdminListing(jobStateLines(context.results.stateOf(which)));
      }
      if (args.length === 1 && asciiLowerCase(what) === 'results' && context.results) {
        const stored = context.results.stored;
        return formatAdminListing([`kept\t${stored.count}`, `bytes\t${stored.bytes}`, `batches_running\t${context.batches?.running ?? 0}`]);
      }
      if (args.length === 1 && asciiLowerCase(what) === 'batches' && context.batches) {
        return formatAdminListing(context.batches.summaries(MAX_BATCHES_LISTED).map(formatBatchRow));
      }
      if (args.length === 1 && asciiLowerCase(what) === 'jobs') {
        return formatAdminListing(
          inGearmandOrder(broker.allJobs(), (job) => broker.handleOf(job)).map((job) =>
            formatJobRow({ handle: broker.handleOf(job), retries: job.retries, ignored: job.ignored, queued: job.background }),
          ),
        );
      }
      if (args.length === 2 && asciiLowerCase(what) === 'paused' && asciiLowerCase(which) === 'functions') {
        return formatAdminListing(
          functionsInGearmandOrder(broker)
            .filter((fn) => fn.paused)
            .map((fn) => fn.name),
        );
      }
      return formatAdminError('UNKNOWN_SHOW_ARGUMENTS');
    }
    case 'pause':
    case 'resume': {
      // Extensions of this server (gearmand answers UNKNOWN_COMMAND): hold a function's jobs back from workers, and let them go again.
      const [what, name] = args;
      if (args.length !== 2 || asciiLowerCase(what) !== 'function') return formatAdminError('INVALID_ARGUMENTS', INVALID_ARGUMENTS + word);
      if (command === 'pause') {
        broker.pauseFunction(name);
        return formatAdminOk();
      }
      return broker.resumeFunction(name) ? formatAdminOk() : 'ERR function not found\r\n';
    }
    case 'cancel': {
      if (args.length < 2) break;
      const [what, handle] = args;
      if (args.length !== 2 || asciiLowerCase(what) !== 'job') return formatAdminError('UNKNOWN_ERROR');
      if (context.batches?.cancel(handle)) return formatAdminOk();
      return broker.cancel(handle) ? formatAdminOk() : formatAdminError('UNKNOWN_JOB');
    }
    case 'create': {
      const [what, name] = args;
      if (args.length !== 2 || asciiLowerCase(what) !== 'function') return formatAdminError('INVALID_ARGUMENTS', INVALID_ARGUMENTS + word);
      broker.createFunction(name);
      return formatAdminOk();
    }
    case 'drop': {
      const [what, name] = args;
      if (args.length !== 2 || asciiLowerCase(what) !== 'function') return formatAdminError('INVALID_ARGUMENTS', INVALID_ARGUMENTS + word);
      const wanted = asciiLowerCase(name);
      const fn = [...broker.functions()].find((candidate) => asciiLowerCase(candidate.name) === wanted);
      if (!fn) return 'ERR function not found\r\n';
      return broker.dropFunction(fn) ? formatAdminOk() : 'ERR there are still connected workers or executing clients\r\n';
    }
    case 'getpid':
      return formatAdminOk(String(process.pid));
    case 'verbose':
      return formatAdminOk(context.verbose);
    case 'version':
      return formatAdminOk(context.version);
    default:
      break;
  }
  return unknownCommand(word);
}

function unknownCommand(word: string): string {
  return formatAdminError('UNKNOWN_COMMAND', `Unknown server command${word}`);
}

function functionsInGearmandOrder(broker: JobBroker): GearmanFunction[] {
  return inGearmandOrder(broker.functions(), (fn) => fn.name);
}

/** `maxqueue FUNCTION [N | HIGH NORMAL LOW]`: as gearmand, a function that does not exist is left alone. */
function maxQueue(broker: JobBroker, word: string, args: string[]): string {
  if (args.length === 0) return formatAdminError('INVALID_ARGUMENTS', INVALID_ARGUMENTS + word);
  const [functionName, ...numbers] = args;
  const limit = (priority: number) => (numbers.length > priority ? Math.max(atoi(numbers[priority]), 0) : 0);
  // One number limits every priority; two leave LOW unlimited.
  const limits: [number, number, number] = numbers.length <= 1 ? [limit(0), limit(0), limit(0)] : [limit(0), limit(1), limit(2)];
  broker.setMaxQueue(functionName, limits);
  return formatAdminOk();
}

/**
 * `show job ID`: one job's state and sizes, `key<TAB>value` a line, never a payload. Ids and names
 * are byte strings, as admin replies are.
 */
function jobStateLines(state: JobState): string[] {
  const iso = (ms: number | undefined) => (ms === undefined ? '-' : new Date(ms).toISOString());
  if (state.kind === 'unknown') return ['state\tunknown', `reason\t${state.reason}`];
  if (state.kind === 'live') {
    return [
      `handle\t${state.handle}`,
      `state\t${state.running ? 'running' : 'queued'}`,
      `function\t${state.functionName}`,
      `progress\t${state.numerator}/${state.denominator}`,
      `parts\t${state.parts.length}`,
      `parts_bytes\t${state.parts.reduce((sum, part) => sum + part.length, 0)}`,
      `created\t${iso(state.createdAt)}`,
      ...(state.batch ? [`batch\t${state.batch.ended}/${state.batch.total} ended, ${state.batch.failed} failed`] : []),
    ];
  }
  const { result } = state;
  return [
    `handle\t${result.handle}`,
    `state\t${result.outcome === 'complete' ? 'completed' : 'failed'}`,
    ...(result.outcome === 'complete' ? [] : [`failure\t${result.outcome}`]),
    `function\t${result.functionName}`,
    `progress\t${result.numerator}/${result.denominator}`,
    `result_bytes\t${result.payload.length}`,
    `parts\t${result.parts.length}`,
    `parts_bytes\t${result.parts.reduce((sum, part) => sum + part.length, 0)}`,
    ...(result.dropped ? ['dropped\tresult over maxResultBytes'] : []),
    `created\t${iso(result.createdAt)}`,
    `ended\t${iso(result.endedAt)}`,
    ...(result.batch ? [`batch\t${result.batch.ended}/${result.batch.total} ended, ${result.batch.failed} failed`] : []),
  ];
}
