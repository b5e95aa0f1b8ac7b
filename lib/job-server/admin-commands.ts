import {
  asciiLowerCase,
  formatAdminError,
  formatAdminListing,
  formatAdminOk,
  formatJobRow,
  formatPriorityStatusRow,
  formatStatusRow,
  formatWorkerRow,
  parseAdminCommand,
} from '../protocol/admin.js';
import type { GearmanFunction } from './gearman-function.js';
import { inGearmandOrder } from './gearmand-order.js';
import type { JobBroker } from './job-broker.js';
import { parseLeadingInteger } from './job-broker.js';
import type { ServerConnection } from './server-connection.js';

export interface AdminContext {
  readonly broker: JobBroker;
  /** Every open connection, oldest first. */
  connections(): Iterable<ServerConnection>;
  readonly version: string;
  readonly verbose: string;
}

const INVALID_ARGUMENTS = 'An incomplete set of arguments was sent to this command ';

/**
 * The text admin protocol on the job server's port, with gearmand's replies byte for byte
 * (including its mix of `\r\n` and `\n` endings) so `gearadmin` and scripts parse them.
 */
export function runAdminCommand(context: AdminContext, line: string): string {
  const { command, word, args } = parseAdminCommand(line);
  const broker = context.broker;
  switch (command) {
    case 'workers':
      // gearmand lists the newest connection first, and each one's newest registration first
      // (a function registered twice shows twice).
      return formatAdminListing(
        [...context.connections()].reverse().map((con) =>
          formatWorkerRow({
            fd: con.id,
            ip: con.host,
            clientId: con.clientId,
            functions: con.registrations.map((fn) => fn.name).reverse(),
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
            high: fn.waiting[0],
            normal: fn.waiting[1],
            low: fn.waiting[2],
            workers: fn.registrations,
          }),
        ),
      );
    case 'maxqueue':
      return maxQueue(broker, word, args);
    case 'show':
      if (args.length === 0) break;
      if (args.length === 2 && asciiLowerCase(args[0]) === 'unique' && asciiLowerCase(args[1]) === 'jobs') {
        return formatAdminListing(inGearmandOrder(broker.jobs.values(), (job) => job.unique).map((job) => job.unique));
      }
      if (args.length === 1 && asciiLowerCase(args[0]) === 'jobs') {
        return formatAdminListing(
          inGearmandOrder(broker.jobs.values(), (job) => broker.handleOf(job)).map((job) =>
            formatJobRow({ handle: broker.handleOf(job), retries: job.retries, ignored: job.ignored, queued: job.background }),
          ),
        );
      }
      return formatAdminError('UNKNOWN_SHOW_ARGUMENTS');
    case 'cancel': {
      if (args.length < 2) break;
      if (args.length !== 2 || asciiLowerCase(args[0]) !== 'job') return formatAdminError('UNKNOWN_ERROR');
      const job = broker.findByHandle(args[1]);
      if (!job || job.ignored) return formatAdminError('UNKNOWN_JOB');
      broker.cancel(job);
      return formatAdminOk();
    }
    case 'create':
      if (args.length !== 2 || asciiLowerCase(args[0]) !== 'function')
        return formatAdminError('INVALID_ARGUMENTS', INVALID_ARGUMENTS + word);
      broker.functionNamed(args[1]);
      return formatAdminOk();
    case 'drop': {
      if (args.length !== 2 || asciiLowerCase(args[0]) !== 'function')
        return formatAdminError('INVALID_ARGUMENTS', INVALID_ARGUMENTS + word);
      const name = asciiLowerCase(args[1]);
      const fn = [...broker.functions.values()].find((candidate) => asciiLowerCase(candidate.name) === name);
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
  return formatAdminError('UNKNOWN_COMMAND', `Unknown server command${word}`);
}

function functionsInGearmandOrder(broker: JobBroker): GearmanFunction[] {
  return inGearmandOrder(broker.functions.values(), (fn) => fn.name);
}

/** `maxqueue FUNCTION [N | HIGH NORMAL LOW]`: as gearmand, a function that does not exist is left alone. */
function maxQueue(broker: JobBroker, word: string, args: string[]): string {
  if (args.length === 0) return formatAdminError('INVALID_ARGUMENTS', INVALID_ARGUMENTS + word);
  const limits = [0, 1, 2].map((priority) => (args.length > priority + 1 ? Math.max(parseLeadingInteger(args[priority + 1]), 0) : 0));
  if (args.length <= 2) limits.fill(limits[0]);
  const fn = broker.functions.get(args[0]);
  if (fn) fn.maxQueue = limits;
  return formatAdminOk();
}
