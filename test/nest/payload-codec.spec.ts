import fc from 'fast-check';
import { GearmanRecord, GearmanRecordBuilder } from '../../lib/nest/gearman-record-builder.js';
import { decodePayload, encodePayload } from '../../lib/nest/payload-codec.js';

describe('payload rules', () => {
  test('every JSON value survives encode then decode', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(decodePayload(encodePayload(value))).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  test('strings that look like other JSON values stay strings', () => {
    for (const text of ['42', 'null', 'true', '{"a":1}', '', ' ']) {
      expect(encodePayload(text).toString()).toBe(JSON.stringify(text));
      expect(decodePayload(encodePayload(text))).toBe(text);
    }
  });

  test('undefined is the empty payload, and the empty payload is undefined', () => {
    expect(encodePayload(undefined).length).toBe(0);
    expect(decodePayload(Buffer.alloc(0))).toBeUndefined();
  });

  test('bytes go out untouched', () => {
    const bytes = Buffer.from([0, 255, 10]);
    expect(encodePayload(bytes)).toBe(bytes);
    expect(encodePayload(new Uint8Array([1, 2]))).toEqual(Buffer.from([1, 2]));
  });

  test('from a plain client: JSON text is parsed, other text is a string, invalid UTF-8 stays a Buffer', () => {
    expect(decodePayload(Buffer.from('[1,2]'))).toEqual([1, 2]);
    expect(decodePayload(Buffer.from(' 7 '))).toBe(7);
    expect(decodePayload(Buffer.from('hello world'))).toBe('hello world');
    expect(decodePayload(Buffer.from('12 monkeys'))).toBe('12 monkeys');
    expect(decodePayload(Buffer.from('nullable'))).toBe('nullable');
    const binary = Buffer.from([0xff, 0xfe, 0x00]);
    expect(decodePayload(binary)).toBe(binary);
  });

  test('values without a JSON form are refused with a clear error', () => {
    expect(() => encodePayload(() => 1)).toThrow(/no JSON form/);
    expect(() => encodePayload(Symbol('s'))).toThrow(/no JSON form/);
  });
});

describe('GearmanRecordBuilder', () => {
  test('builds a record with the data and options', () => {
    const record = new GearmanRecordBuilder({ a: 1 }).setPriority('high').setUnique('u-1').build();
    expect(record).toBeInstanceOf(GearmanRecord);
    expect(record.data).toEqual({ a: 1 });
    expect(record.options).toEqual({ priority: 'high', unique: 'u-1' });
    expect(record.isBackground).toBe(false);
  });

  test('runAt and setBackground make a background job', () => {
    expect(new GearmanRecordBuilder(1).setRunAt(new Date()).build().isBackground).toBe(true);
    expect(new GearmanRecordBuilder(1).setBackground().build().isBackground).toBe(true);
    expect(new GearmanRecordBuilder(1).setBackground(false).build().isBackground).toBe(false);
  });

  test('setData replaces the data; bad options are refused', () => {
    expect(new GearmanRecordBuilder<number>().setData(5).build().data).toBe(5);
    expect(() => new GearmanRecordBuilder(1).setPriority('urgent' as never)).toThrow(/priority/);
    expect(() => new GearmanRecordBuilder(1).setRunAt(Number.NaN)).toThrow(/runAt/);
    expect(() => new GearmanRecordBuilder(1).setUnique(5 as never)).toThrow(/unique/);
  });
});
