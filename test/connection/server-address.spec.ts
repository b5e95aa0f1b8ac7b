import { resolveServerAddress, resolveServerAddresses } from '../../lib/connection/server-address.js';

describe('server addresses', () => {
  test.each([
    ['example.org:4731', 'example.org', 4731],
    ['example.org', 'example.org', 4730],
    ['  10.0.0.1:1 ', '10.0.0.1', 1],
    ['[::1]:4740', '::1', 4740],
    ['[::1]', '::1', 4730],
  ])('%j → %s port %d', (input, host, port) => {
    expect(resolveServerAddress(input)).toMatchObject({ host, port, tls: undefined });
  });

  test('objects take the default port and their own TLS setting', () => {
    expect(resolveServerAddress({ host: 'a' })).toEqual({ host: 'a', port: 4730, tls: undefined, label: 'a:4730' });
    expect(resolveServerAddress({ host: 'a', port: 1, tls: true })).toMatchObject({ port: 1, tls: {} });
    expect(resolveServerAddress({ host: 'a', tls: false }, true).tls).toBeUndefined();
    expect(resolveServerAddress('a', { rejectUnauthorized: false }).tls).toEqual({ rejectUnauthorized: false });
    // tls: true on an address turns TLS on with the peer's own options (its CA), not without them.
    expect(resolveServerAddress({ host: 'a', tls: true }, { ca: 'CA' }).tls).toEqual({ ca: 'CA' });
    expect(resolveServerAddress({ host: 'a', tls: { ca: 'other' } }, { ca: 'CA' }).tls).toEqual({ ca: 'other' });
    expect(resolveServerAddress('[::1]:5').label).toBe('[::1]:5');
  });

  test.each([['host:'], ['host:0'], ['host:65536'], ['host:port'], [''], ['a b:1'], ['::1:4730']])(
    '%j is refused with a clear error',
    (input) => {
      expect(() => resolveServerAddress(input)).toThrow(/Invalid Gearman server address/);
    },
  );

  test('objects without a host, or with a bad port, are refused', () => {
    expect(() => resolveServerAddress({ host: '' })).toThrow(/Invalid Gearman server address/);
    expect(() => resolveServerAddress({ host: 'a', port: 1.5 })).toThrow(/port must be an integer/);
    expect(() => resolveServerAddress(42 as never)).toThrow(/expected a string/);
  });

  test('an empty list means the default server; duplicates are refused', () => {
    expect(resolveServerAddresses(undefined).map((a) => a.label)).toEqual(['127.0.0.1:4730']);
    expect(resolveServerAddresses([]).map((a) => a.label)).toEqual(['127.0.0.1:4730']);
    expect(() => resolveServerAddresses(['a', 'a:4730'])).toThrow(/listed twice/);
  });
});
