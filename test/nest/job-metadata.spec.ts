import { metadataOf, openJobPayload, sealJobPayload, traceContextOf } from '../../lib/nest/job-metadata.js';
import { EnvelopeError, sealEnvelope } from '../../lib/protocol/envelope.js';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('job metadata in the envelope', () => {
  it('no metadata: the payload goes out bare, and bare bytes read back as the payload', () => {
    const payload = Buffer.from('{"a":1}');
    expect(sealJobPayload(payload, undefined)).toBe(payload);
    expect(sealJobPayload(payload, {})).toBe(payload);
    expect(openJobPayload(payload)).toEqual({ payload, envelope: undefined });
  });

  it('metadata round-trips ahead of the payload, in the envelope field "metadata"', () => {
    const sealed = sealJobPayload(Buffer.from('x'), { traceparent: TRACEPARENT, tenant: 'acme' });
    expect(sealed.subarray(0, 5)).toEqual(Buffer.from('\0NGE\x01', 'latin1'));
    expect(sealed.toString('utf8', 9)).toBe(`{"metadata":{"traceparent":"${TRACEPARENT}","tenant":"acme"}}x`);
    const opened = openJobPayload(sealed);
    expect(opened).toEqual({ payload: Buffer.from('x'), envelope: { metadata: { traceparent: TRACEPARENT, tenant: 'acme' } } });
    expect(metadataOf(opened.envelope)).toEqual({ traceparent: TRACEPARENT, tenant: 'acme' });
  });

  it('other fields travel beside it (a retry policy); a metadata field that is not strings by name is an EnvelopeError', () => {
    const sealed = sealJobPayload(Buffer.from('p'), { tenant: 'acme' }, { retry: { attempts: 3, attempt: 1 } });
    expect(openJobPayload(sealed).envelope).toEqual({ retry: { attempts: 3, attempt: 1 }, metadata: { tenant: 'acme' } });
    const withoutMetadata = openJobPayload(sealEnvelope({ retry: { attempts: 2 } }, Buffer.from('p')));
    expect(withoutMetadata).toEqual({ payload: Buffer.from('p'), envelope: { retry: { attempts: 2 } } });
    expect(metadataOf(withoutMetadata.envelope)).toBeUndefined();
    expect(() => openJobPayload(sealEnvelope({ metadata: ['a'] }, Buffer.from('p')))).toThrow(EnvelopeError);
    expect(() => openJobPayload(sealEnvelope({ metadata: { n: 1 } }, Buffer.from('p')))).toThrow(EnvelopeError);
  });

  it('trace context: only a valid W3C traceparent counts, with its tracestate', () => {
    expect(traceContextOf({ traceparent: TRACEPARENT, tracestate: 'vendor=1' })).toEqual({
      traceparent: TRACEPARENT,
      tracestate: 'vendor=1',
    });
    expect(traceContextOf({ traceparent: TRACEPARENT })).toEqual({ traceparent: TRACEPARENT });
    expect(traceContextOf(undefined)).toBeUndefined();
    for (const invalid of [
      'not-a-traceparent',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
    ]) {
      expect(traceContextOf({ traceparent: invalid })).toBeUndefined();
    }
  });
});
