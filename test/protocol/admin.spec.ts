import {
  formatAdminError,
  formatAdminListing,
  formatAdminOk,
  formatBatchRow,
  formatJobRow,
  formatPriorityStatusRow,
  formatStatusRow,
  formatWorkerRow,
  GearmanProtocolError,
  isCompleteAdminReply,
  parseAdminCommand,
  parseAdminReply,
  parseBatchRow,
  parseJobRow,
  parsePriorityStatusRow,
  parseStatusRow,
  parseWorkerRow,
} from '../../lib/protocol/index.js';

describe('admin protocol helpers', () => {
  test('parseAdminCommand lower-cases the command, keeps the word and the arguments as sent', () => {
    expect(parseAdminCommand('STATUS')).toEqual({ command: 'status', word: 'STATUS', args: [] });
    expect(parseAdminCommand('cancel  job H:box:1')).toEqual({ command: 'cancel', word: 'cancel', args: ['job', 'H:box:1'] });
    expect(parseAdminCommand('')).toEqual({ command: '', word: '', args: [] });
  });

  test('parseAdminCommand splits as gearmand: a leading space makes an empty command, trailing spaces an empty argument', () => {
    expect(parseAdminCommand('  status')).toEqual({ command: '', word: '', args: ['status'] });
    expect(parseAdminCommand('show jobs  ')).toEqual({ command: 'show', word: 'show', args: ['jobs', ''] });
    expect(parseAdminCommand(' ')).toEqual({ command: '', word: '', args: [''] });
    expect(parseAdminCommand('x\ty')).toEqual({ command: 'x\ty', word: 'x\ty', args: [] });
  });

  test('parseAdminCommand reads each word up to a NUL and lower-cases ASCII only', () => {
    expect(parseAdminCommand('sta\0tus a\0b')).toEqual({ command: 'sta', word: 'sta', args: ['a'] });
    expect(parseAdminCommand('\xc9TAT')).toEqual({ command: '\xc9tat', word: '\xc9TAT', args: [] });
  });

  test('replies are formatted with gearmand bytes', () => {
    expect(formatAdminListing([])).toBe('.\n');
    expect(formatAdminListing(['a\t1\t0\t0', 'b\t0\t0\t1'])).toBe('a\t1\t0\t0\nb\t0\t0\t1\n.\n');
    expect(formatAdminOk()).toBe('OK\r\n');
    expect(formatAdminOk('1234')).toBe('OK 1234\n');
    expect(formatAdminError('UNKNOWN_JOB')).toBe('ERR UNKNOWN_JOB\r\n');
    expect(formatAdminError('UNKNOWN_COMMAND', 'Unknown server commandx')).toBe('ERR UNKNOWN_COMMAND Unknown+server+commandx\r\n');
  });

  test('rows format and parse back', () => {
    const status = { name: 'fn', total: 3, running: 1, workers: 2 };
    expect(formatStatusRow(status)).toBe('fn\t3\t1\t2');
    expect(parseStatusRow(formatStatusRow(status))).toEqual(status);
    const priority = { name: 'fn', high: 1, normal: 2, low: 3, workers: 4 };
    expect(parsePriorityStatusRow(formatPriorityStatusRow(priority))).toEqual(priority);
    const worker = { fd: 12, ip: '127.0.0.1', clientId: '-', functions: ['a', 'b'] };
    expect(formatWorkerRow(worker)).toBe('12 127.0.0.1 - : a b');
    expect(parseWorkerRow('12 127.0.0.1 - : a b')).toEqual(worker);
    expect(parseWorkerRow('7 ::1 id :')).toEqual({ fd: 7, ip: '::1', clientId: 'id', functions: [] });
    const job = { handle: 'H:box:9', retries: 2, ignored: false, queued: true };
    expect(formatJobRow(job)).toBe('H:box:9\t2\t0\t1');
    expect(parseJobRow('H:box:9\t2\t0\t1')).toEqual(job);
    const batch = { handle: 'H:box:a-0123456789abcdef', functionName: 'resize', ended: 3, total: 10, failed: 1, gathering: false };
    expect(formatBatchRow(batch)).toBe('H:box:a-0123456789abcdef\tresize\t3\t10\t1\trunning');
    expect(parseBatchRow('H:box:a-0123456789abcdef\tresize\t3\t10\t1\trunning')).toEqual(batch);
    expect(parseBatchRow(formatBatchRow({ ...batch, ended: 10, gathering: true }))).toEqual({ ...batch, ended: 10, gathering: true });
  });

  test('malformed rows are refused with BAD_ADMIN_REPLY', () => {
    expect(() => parseStatusRow('fn\t1\t2')).toThrow(GearmanProtocolError);
    expect(() => parseStatusRow('fn\tx\t0\t0')).toThrow(/Malformed/);
    expect(() => parseWorkerRow('no colon here')).toThrow(GearmanProtocolError);
    expect(() => parseBatchRow('H:box:1\tresize\t3\t10\t1')).toThrow(/Malformed show batches row/);
    expect(() => parseBatchRow('H:box:1\tresize\t3\t10\t1\tsleeping')).toThrow(GearmanProtocolError);
    expect(() => parseBatchRow('H:box:1\tresize\tx\t10\t1\trunning')).toThrow(GearmanProtocolError);
  });

  test('whole replies are recognised and parsed', () => {
    expect(isCompleteAdminReply('fn\t1', true)).toBe(false);
    expect(isCompleteAdminReply('fn\t1\t0\t0\n.\n', true)).toBe(true);
    expect(isCompleteAdminReply('.\n', true)).toBe(true);
    expect(isCompleteAdminReply('ERR UNKNOWN_SHOW_ARGUMENTS\r\n', true)).toBe(true);
    expect(isCompleteAdminReply('OK', false)).toBe(false);
    expect(parseAdminReply('a\nb\n.\n', true)).toEqual({ kind: 'listing', rows: ['a', 'b'] });
    expect(parseAdminReply('.\n', true)).toEqual({ kind: 'listing', rows: [] });
    expect(parseAdminReply('OK\r\n', false)).toEqual({ kind: 'ok', value: undefined });
    expect(parseAdminReply('OK 1.1.20\n', false)).toEqual({ kind: 'ok', value: '1.1.20' });
    expect(parseAdminReply('ERR UNKNOWN_COMMAND Unknown+server+commandx\r\n', false)).toEqual({
      kind: 'error',
      code: 'UNKNOWN_COMMAND',
      text: 'Unknown server commandx',
    });
    expect(() => parseAdminReply('a\nb\n', true)).toThrow(GearmanProtocolError);
    expect(() => parseAdminReply('WHAT\n', false)).toThrow(GearmanProtocolError);
  });
});
