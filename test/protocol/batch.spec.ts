import {
  batchItemUnique,
  BatchRequestError,
  decodeBatchRequest,
  encodeBatchOutcomes,
  encodeBatchRequest,
} from '../../lib/protocol/batch.js';

describe('batch wire format', () => {
  it('packs the options as envelope metadata and each item as a 4-byte length and its bytes', () => {
    const payload = encodeBatchRequest({ function: 'resize', failFast: true, gather: 'collect' }, [Buffer.from('ab'), Buffer.alloc(0)]);
    const metadata = '{"function":"resize","count":2,"failFast":true,"gather":"collect"}';
    expect(payload.toString('hex')).toBe(
      '004e474501' + metadata.length.toString(16).padStart(8, '0') + Buffer.from(metadata).toString('hex') + '000000026162' + '00000000',
    );
  });

  it('reads back what it packed, binary items included', () => {
    const items = [Buffer.from([0, 255, 10]), Buffer.from('{"n":1}'), Buffer.alloc(0)];
    const request = { function: 'f', failFast: false, priority: 'low', concurrency: 3 } as const;
    const decoded = decodeBatchRequest(encodeBatchRequest(request, items));
    expect(decoded.request).toEqual(request);
    expect(decoded.items).toEqual(items);
    expect(decodeBatchRequest(encodeBatchRequest({ function: 'f', failFast: true }, [])).items).toEqual([]);
  });

  it('refuses a malformed batch, saying why', () => {
    expect(() => decodeBatchRequest(Buffer.from('not an envelope'))).toThrow(BatchRequestError);
    const good = encodeBatchRequest({ function: 'f', failFast: true }, [Buffer.from('abc')]);
    expect(() => decodeBatchRequest(good.subarray(0, good.length - 1))).toThrow(/runs past the end/);
    expect(() => decodeBatchRequest(Buffer.concat([good, Buffer.from([0, 0])]))).toThrow(/inside a length/);
    expect(() => encodeBatchRequest({ function: '', failFast: true }, [])).toThrow(/function/);
    expect(() => encodeBatchRequest({ function: 'f', failFast: true, concurrency: 0 }, [])).toThrow(/concurrency/);
    expect(() => encodeBatchRequest({ function: 'f', failFast: true, priority: 'urgent' as 'high' }, [])).toThrow(/priority/);
  });

  it('names items and the gather job under the batch unique id', () => {
    expect(batchItemUnique('b-1', 7)).toBe('b-1/7');
    expect(batchItemUnique('b-1', 'gather')).toBe('b-1/gather');
  });

  it('gathers outcomes in order as JSON, payloads read by the payload rules', () => {
    const gathered = encodeBatchOutcomes([
      { kind: 'complete', data: Buffer.from('{"w":1}') },
      { kind: 'complete', data: Buffer.from('plain text') },
      { kind: 'complete', data: Buffer.alloc(0) },
      { kind: 'complete', data: Buffer.from([0xff, 0x00]) },
      { kind: 'exception', data: Buffer.from('{"code":"NO"}') },
      { kind: 'fail' },
      { kind: 'fail', reason: 'Job H:x:9 (f) was cancelled' },
    ]);
    expect(JSON.parse(gathered.toString())).toEqual([
      { index: 0, value: { w: 1 } },
      { index: 1, value: 'plain text' },
      { index: 2 },
      { index: 3, value: { type: 'Buffer', data: [255, 0] } },
      { index: 4, error: { code: 'NO' } },
      { index: 5, error: { code: 'JOB_FAILED', message: 'Batch item 5 failed' } },
      { index: 6, error: { code: 'JOB_FAILED', message: 'Job H:x:9 (f) was cancelled' } },
    ]);
    expect(encodeBatchOutcomes([]).toString()).toBe('[]');
  });
});
