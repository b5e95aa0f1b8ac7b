import {
  checkJobId,
  decodeResultReply,
  decodeResultRequest,
  encodeResultReply,
  encodeResultRequest,
  formatResultRefusal,
  ResultFetchError,
} from '../../lib/protocol/result-fetch.js';

const hex = (text: string) => Buffer.from(text, 'latin1').toString('hex');

describe('result fetch wire format', () => {
  it('encodes a machine-form request as an envelope: options as metadata, the id as payload', () => {
    const payload = encodeResultRequest('H:host:42', { wait: true, timeoutMs: 5000, follow: true });
    const metadata = '{"wait":true,"timeoutMs":5000,"follow":true}';
    expect(payload.toString('hex')).toBe(
      '004e4745' + '01' + metadata.length.toString(16).padStart(8, '0') + hex(metadata) + hex('H:host:42'),
    );
    expect(encodeResultRequest('u-1').subarray(9).toString()).toBe('{"wait":false}u-1');
  });

  it('reads both forms back, with the function deciding whether a plain request waits', () => {
    expect(decodeResultRequest(encodeResultRequest('H:host:42', { wait: true, timeoutMs: 10 }), false)).toEqual({
      form: 'machine',
      id: 'H:host:42',
      request: { wait: true, follow: false, timeoutMs: 10 },
    });
    expect(decodeResultRequest(Buffer.from('H:host:42'), true)).toEqual({ form: 'plain', id: 'H:host:42', wait: true });
    expect(decodeResultRequest(Buffer.from('H:host:42\r\n'), false)).toEqual({ form: 'plain', id: 'H:host:42', wait: false });
    // Ids are bytes: kept one character a byte, as the job server keeps unique ids.
    expect(decodeResultRequest(Buffer.from([0xc3, 0xa9]), true)).toEqual({ form: 'plain', id: '\xc3\xa9', wait: true });
  });

  it('calls an empty, oversized or NUL-holding id malformed in either form', () => {
    for (const bad of [Buffer.alloc(0), Buffer.alloc(65, 'a'), Buffer.from('a\0b'), Buffer.from('\n')]) {
      const decoded = decodeResultRequest(bad, true);
      expect(decoded).toMatchObject({ form: 'plain', malformed: expect.stringMatching(/1-64 bytes without NUL/) });
    }
    expect(() => encodeResultRequest('')).toThrow(ResultFetchError);
    expect(() => checkJobId('x'.repeat(65))).toThrow(/got 65 bytes/);
    expect(() => encodeResultRequest('a', { timeoutMs: -1 })).toThrow(/timeoutMs/);
  });

  it('calls a broken machine-form request malformed', () => {
    const envelope = (metadata: string, id = 'x') =>
      Buffer.concat([
        Buffer.from('\0NGE\x01', 'latin1'),
        Buffer.from(metadata.length.toString(16).padStart(8, '0'), 'hex'),
        Buffer.from(metadata + id),
      ]);
    expect(decodeResultRequest(envelope('{}'), true)).toEqual({ form: 'machine', malformed: 'wait must be true or false' });
    expect(decodeResultRequest(envelope('{"wait":true,"timeoutMs":1.5}'), true)).toMatchObject({ malformed: /timeoutMs/ });
    expect(decodeResultRequest(envelope('{"wait":true,"follow":1}'), true)).toMatchObject({ malformed: /follow/ });
    expect(decodeResultRequest(envelope('{"wait":true}', ''), true)).toMatchObject({ malformed: /1-64 bytes/ });
    expect(decodeResultRequest(envelope('{"wait":'), true)).toMatchObject({ form: 'machine', malformed: /not valid JSON/ });
  });

  it('encodes a reply as an envelope of the state record and the payload, leaving out absent fields', () => {
    const reply = encodeResultReply(
      { state: 'completed', handle: 'H:h:1', numerator: 1, denominator: 2, parts: 0, endedAt: 7, failure: undefined },
      Buffer.from([1, 2]),
    );
    const metadata = '{"state":"completed","handle":"H:h:1","numerator":1,"denominator":2,"parts":0,"endedAt":7}';
    expect(reply.toString('hex')).toBe('004e474501' + metadata.length.toString(16).padStart(8, '0') + hex(metadata) + '0102');
    expect(decodeResultReply(reply)).toEqual({
      record: { state: 'completed', handle: 'H:h:1', numerator: 1, denominator: 2, parts: 0, endedAt: 7 },
      payload: Buffer.from([1, 2]),
    });
  });

  it('refuses a reply that is not one, naming why', () => {
    expect(() => decodeResultReply(Buffer.from('plain result'))).toThrow(/does not answer gearman.result/);
    expect(() => decodeResultReply(encodeResultReply({ state: 'odd' as 'queued' }))).toThrow(/no known state/);
  });

  it('formats the plain-form reason line with its code first', () => {
    expect(formatResultRefusal('UNKNOWN', 'H:h:9', 'no such job here')).toBe('UNKNOWN H:h:9: no such job here\n');
    expect(formatResultRefusal('MALFORMED', undefined, 'empty id')).toBe('MALFORMED: empty id\n');
  });
});
