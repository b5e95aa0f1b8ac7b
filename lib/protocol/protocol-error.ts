/** Stable codes of every protocol error; match on `error.code`, never on the message. */
export enum ProtocolErrorCode {
  /** A binary header did not start with `\0REQ` or `\0RES`. */
  BAD_MAGIC = 'BAD_MAGIC',
  /** The type code is not in the packet table (or is the unused code 5). */
  UNKNOWN_PACKET_TYPE = 'UNKNOWN_PACKET_TYPE',
  /** A request arrived where responses are expected, or the reverse, or a type with the wrong magic. */
  UNEXPECTED_MAGIC = 'UNEXPECTED_MAGIC',
  /** The header announces a payload over the configured maximum. */
  PACKET_TOO_LARGE = 'PACKET_TOO_LARGE',
  /** A text admin line grew past the configured maximum without a newline. */
  ADMIN_LINE_TOO_LONG = 'ADMIN_LINE_TOO_LONG',
  /** The payload holds fewer NUL separators than the type has arguments, or an argument-less type carries a payload. */
  ARGUMENT_COUNT = 'ARGUMENT_COUNT',
  /** An argument is over its fixed limit (unique, handle, option name, function name). */
  ARGUMENT_TOO_LARGE = 'ARGUMENT_TOO_LARGE',
  /** A NUL byte inside an argument that is not the last one would shift every later argument. */
  ARGUMENT_CONTAINS_NUL = 'ARGUMENT_CONTAINS_NUL',
  /** An admin reply did not have the expected shape. */
  BAD_ADMIN_REPLY = 'BAD_ADMIN_REPLY',
}

/** The one error type the protocol layer throws. */
export class GearmanProtocolError extends Error {
  override readonly name = 'GearmanProtocolError';

  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
    /** The packet concerned, by name, when there is one. */
    readonly packet?: string,
    /** The argument concerned, by name, when there is one. */
    readonly argument?: string,
  ) {
    super(message);
  }
}
