import { GearmanProtocolError, ProtocolErrorCode } from './protocol-error.js';

/**
 * The text admin protocol, byte for byte as gearmand speaks it: pure helpers, no sockets.
 * gearmand ends `OK` and `ERR` replies with `\r\n` but listings and `OK <value>` replies with
 * `\n`; `gearadmin` and other tools depend on neither, but we keep its bytes exactly.
 */

export interface AdminCommand {
  /** The first word, lower-cased; '' for an empty line. */
  readonly command: string;
  /** The first word as sent (gearmand echoes it in `ERR UNKNOWN_COMMAND`). */
  readonly word: string;
  /** The remaining words as sent. */
  readonly args: string[];
}

/** gearmand takes at most this many words on an admin line and drops a connection that sends more. */
export const MAX_ADMIN_WORDS = 5;

/**
 * Splits an admin line into its command and arguments as gearmand does: words end at a space and
 * a run of spaces counts as one, so a leading space makes an empty command and trailing spaces
 * an empty last argument; each word is read as a C string, up to a NUL. The command is
 * lower-cased in ASCII only, as C's strcasecmp compares.
 */
export function parseAdminCommand(line: string): AdminCommand {
  const words = line.split(/ +/).map(upToNul);
  const word = words.shift()!;
  return { command: asciiLowerCase(word), word, args: words };
}

/** Lower-cases A-Z only, as C's strcasecmp does, whatever the other bytes are. */
export function asciiLowerCase(text: string): string {
  return text.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
}

function upToNul(word: string): string {
  const nul = word.indexOf('\0');
  return nul === -1 ? word : word.slice(0, nul);
}

/** A listing: one line per row, then a line holding only `.`. */
export function formatAdminListing(rows: readonly string[]): string {
  return rows.length === 0 ? '.\n' : `${rows.join('\n')}\n.\n`;
}

/** `OK` alone (`\r\n`), or `OK <value>` (`\n`) for getpid, verbose and version. */
export function formatAdminOk(value?: string): string {
  return value === undefined ? 'OK\r\n' : `OK ${value}\n`;
}

/** `ERR <CODE> <text>`: gearmand writes the text with `+` for spaces. */
export function formatAdminError(code: string, text?: string): string {
  return text === undefined ? `ERR ${code}\r\n` : `ERR ${code} ${text.replace(/ /g, '+')}\r\n`;
}

export type AdminReply =
  | { readonly kind: 'listing'; readonly rows: string[] }
  | { readonly kind: 'ok'; readonly value: string | undefined }
  | { readonly kind: 'error'; readonly code: string; readonly text: string };

/**
 * Whether `text` holds one whole reply: an `OK`/`ERR` line, or a listing through its `.` line.
 * `listing` says which shape to wait for, since a listing's first row may begin with anything.
 */
export function isCompleteAdminReply(text: string, listing: boolean): boolean {
  if (!listing) return text.includes('\n');
  return text === '.\n' || text.endsWith('\n.\n') || /^ERR [^\n]*\n$/.test(text);
}

/** Parses one whole reply (see isCompleteAdminReply). Throws GearmanProtocolError (BAD_ADMIN_REPLY). */
export function parseAdminReply(text: string, listing: boolean): AdminReply {
  if (text.startsWith('ERR ') || text.startsWith('ERR\r') || text.startsWith('ERR\n')) {
    const line = stripLineEnd(text.slice(0, text.indexOf('\n') + 1 || text.length));
    const [, code = '', ...rest] = line.split(' ');
    return { kind: 'error', code, text: rest.join(' ').replace(/\+/g, ' ') };
  }
  if (listing) {
    if (!(text === '.\n' || text.endsWith('\n.\n'))) {
      throw new GearmanProtocolError(
        ProtocolErrorCode.BAD_ADMIN_REPLY,
        `Admin listing does not end with a "." line: ${JSON.stringify(text.slice(-40))}`,
      );
    }
    const body = text.slice(0, text.length - 2);
    return { kind: 'listing', rows: body.length === 0 ? [] : body.slice(0, -1).split('\n') };
  }
  const line = stripLineEnd(text);
  if (line === 'OK') return { kind: 'ok', value: undefined };
  if (line.startsWith('OK ')) return { kind: 'ok', value: line.slice(3) };
  throw new GearmanProtocolError(ProtocolErrorCode.BAD_ADMIN_REPLY, `Unexpected admin reply ${JSON.stringify(line)}`);
}

function stripLineEnd(line: string): string {
  return line.replace(/\r?\n$/, '');
}

/** One row of `status`. */
export interface FunctionStatus {
  readonly name: string;
  readonly total: number;
  readonly running: number;
  readonly workers: number;
}

export function formatStatusRow(status: FunctionStatus): string {
  return `${status.name}\t${status.total}\t${status.running}\t${status.workers}`;
}

export function parseStatusRow(row: string): FunctionStatus {
  const fields = row.split('\t');
  if (fields.length !== 4) throw badRow('status', row);
  return { name: fields[0], total: toCount(fields[1], row), running: toCount(fields[2], row), workers: toCount(fields[3], row) };
}

/** One row of `prioritystatus` (queued jobs only, by priority). */
export interface FunctionPriorityStatus {
  readonly name: string;
  readonly high: number;
  readonly normal: number;
  readonly low: number;
  readonly workers: number;
}

export function formatPriorityStatusRow(status: FunctionPriorityStatus): string {
  return `${status.name}\t${status.high}\t${status.normal}\t${status.low}\t${status.workers}`;
}

export function parsePriorityStatusRow(row: string): FunctionPriorityStatus {
  const fields = row.split('\t');
  if (fields.length !== 5) throw badRow('prioritystatus', row);
  return {
    name: fields[0],
    high: toCount(fields[1], row),
    normal: toCount(fields[2], row),
    low: toCount(fields[3], row),
    workers: toCount(fields[4], row),
  };
}

/** One row of `workers`: `FD IP CLIENT-ID : fn1 fn2 …`. */
export interface WorkerRow {
  readonly fd: number;
  readonly ip: string;
  readonly clientId: string;
  readonly functions: string[];
}

export function formatWorkerRow(row: WorkerRow): string {
  return `${row.fd} ${row.ip} ${row.clientId} :${row.functions.map((name) => ` ${name}`).join('')}`;
}

export function parseWorkerRow(row: string): WorkerRow {
  const match = /^(\d+) (\S+) (\S+) :(.*)$/.exec(row);
  if (!match) throw badRow('workers', row);
  const functions = match[4].split(' ').filter((name) => name.length > 0);
  return { fd: Number(match[1]), ip: match[2], clientId: match[3], functions };
}

/** One row of `show jobs`. */
export interface JobRow {
  readonly handle: string;
  readonly retries: number;
  readonly ignored: boolean;
  readonly queued: boolean;
}

export function formatJobRow(row: JobRow): string {
  return `${row.handle}\t${row.retries}\t${row.ignored ? 1 : 0}\t${row.queued ? 1 : 0}`;
}

export function parseJobRow(row: string): JobRow {
  const fields = row.split('\t');
  if (fields.length !== 4) throw badRow('show jobs', row);
  return { handle: fields[0], retries: toCount(fields[1], row), ignored: fields[2] === '1', queued: fields[3] === '1' };
}

/** One row of `show batches` (this package's job server): a running batch and its items' progress. */
export interface BatchRow {
  readonly handle: string;
  readonly functionName: string;
  readonly ended: number;
  readonly total: number;
  readonly failed: number;
  /** Every item has ended and the gather job runs. */
  readonly gathering: boolean;
}

export function formatBatchRow(row: BatchRow): string {
  return [row.handle, row.functionName, row.ended, row.total, row.failed, row.gathering ? 'gathering' : 'running'].join('\t');
}

export function parseBatchRow(row: string): BatchRow {
  const fields = row.split('\t');
  if (fields.length !== 6 || (fields[5] !== 'running' && fields[5] !== 'gathering')) throw badRow('show batches', row);
  const [handle, functionName, ended, total, failed, phase] = fields;
  return {
    handle,
    functionName,
    ended: toCount(ended, row),
    total: toCount(total, row),
    failed: toCount(failed, row),
    gathering: phase === 'gathering',
  };
}

function toCount(field: string, row: string): number {
  if (!/^\d+$/.test(field)) throw badRow('admin', row);
  return Number(field);
}

function badRow(what: string, row: string): GearmanProtocolError {
  return new GearmanProtocolError(ProtocolErrorCode.BAD_ADMIN_REPLY, `Malformed ${what} row ${JSON.stringify(row)}`);
}
