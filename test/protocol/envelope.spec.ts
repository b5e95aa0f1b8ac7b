import { EnvelopeError, isEnvelope, openEnvelope, sealEnvelope, MAX_ENVELOPE_METADATA_BYTES } from '../../lib/protocol/envelope.js';

describe('job envelope', () => {
  it('lays out magic, version, metadata length, metadata and payload byte for byte', () => {
    const sealed = sealEnvelope({ a: 1 }, Buffer.from('hi'));
    expect(sealed.toString('hex')).toBe(
      '004e4745' + // \0NGE
        '01' + // version
        '00000007' + // 7 bytes of metadata
        Buffer.from('{"a":1}').toString('hex') +
        Buffer.from('hi').toString('hex'),
    );
  });

  it('round-trips metadata and any payload, empty or binary', () => {
    for (const payload of [Buffer.alloc(0), Buffer.from([0, 1, 2, 255]), Buffer.from('{"x":[1,2]}')]) {
      const metadata = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', attempt: 2 };
      expect(openEnvelope(sealEnvelope(metadata, payload))).toEqual({ metadata, payload });
    }
  });

  it('leaves a payload without the magic alone', () => {
    for (const raw of ['', 'hello', '\0NG', '\0NGE', '\0NGE\x02\0\0\0\0{}']) {
      const data = Buffer.from(raw, 'latin1');
      expect(isEnvelope(data)).toBe(false);
      expect(openEnvelope(data)).toBeUndefined();
    }
  });

  it('refuses a broken envelope with EnvelopeError', () => {
    const header = (length: number) =>
      Buffer.concat([Buffer.from('\0NGE\x01', 'latin1'), Buffer.from(length.toString(16).padStart(8, '0'), 'hex')]);
    expect(() => openEnvelope(Buffer.concat([header(10), Buffer.from('{}')]))).toThrow(EnvelopeError);
    expect(() => openEnvelope(Buffer.concat([header(3), Buffer.from('{x}')]))).toThrow(/not valid JSON/);
    expect(() => openEnvelope(Buffer.concat([header(2), Buffer.from('[]')]))).toThrow(/not a JSON object/);
    expect(() => openEnvelope(Buffer.concat([header(MAX_ENVELOPE_METADATA_BYTES + 1), Buffer.alloc(8)]))).toThrow(EnvelopeError);
  });

  it('refuses metadata that is not an object or is too large', () => {
    expect(() => sealEnvelope([] as unknown as Record<string, unknown>, Buffer.alloc(0))).toThrow(EnvelopeError);
    expect(() => sealEnvelope({ big: 'x'.repeat(MAX_ENVELOPE_METADATA_BYTES) }, Buffer.alloc(0))).toThrow(/over the/);
  });
});
