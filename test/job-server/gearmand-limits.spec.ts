import { atoi, atoiUint32, canDoTimeout, storedDenominator, storedNumerator } from '../../lib/job-server/gearmand-limits.js';

describe("gearmand's number reading", () => {
  test.each([
    ['12', 12],
    ['  -7x', -7],
    ['+3', 3],
    ['\t\n 42 ', 42],
    ['abc', 0],
    ['', 0],
    ['- 5', 0],
    ['1e3', 1],
    ['\v\f\r5', 5],
    // C's isspace knows ASCII white space only: a latin1 no-break space stops the reading.
    ['\xa05', 0],
  ])('atoi(%j) = %d', (text, value) => {
    expect(atoi(text)).toBe(value);
  });

  test.each([
    ['3', 3],
    [' 12abc', 12],
    ['x9', 0],
    ['-1', 4294967295],
    ['4294967297', 1],
    ['2147483648', 2147483648],
    // strtol saturates at LONG_MAX / LONG_MIN before the cast keeps the low 32 bits.
    ['99999999999999999999', 4294967295],
    ['-99999999999999999999', 0],
  ])('atoiUint32(%j) = %d', (text, value) => {
    expect(atoiUint32(text)).toBe(value);
  });

  test('WORK_STATUS progress is stored as gearmand stores it: the denominator read from its first 10 bytes', () => {
    expect(storedNumerator('-1')).toBe(4294967295);
    expect(storedDenominator('99999999999')).toBe(1410065407); // 9999999999 (10 digits), low 32 bits
    expect(storedDenominator('12345678901234')).toBe(1234567890);
    expect(storedDenominator('7')).toBe(7);
  });

  test.each([
    ['1000', 1000],
    ['0', 0],
    ['-5', 0],
    ['abc', 0],
    ['', 0],
    [' 1500ms', 1500],
    ['9223372036854775806', Number('9223372036854775806')],
    ['9223372036854775807', undefined], // LONG_MAX: strtol's overflow value
    ['-9223372036854775808', undefined], // LONG_MIN
    ['99999999999999999999', undefined],
    ['000000000000000000001', undefined], // 21 characters
    ['00000000000000000001', 1], // 20 characters
  ])('CAN_DO_TIMEOUT %j reads as %s', (text, value) => {
    expect(canDoTimeout(text)).toBe(value);
  });
});
