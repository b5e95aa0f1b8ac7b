// `nestjs-gearman/protocol`: the Gearman wire format, pure (no sockets, no timers), for code that
// speaks Gearman itself: packet table, encoder, streaming decoder, admin protocol lines, and the job
// envelope that Nest peers use to carry metadata with a job. A deliberate list, recorded with the
// root entry's in test/package/public-api.json.

// Packet table.
export { ARGUMENT_LIMITS, Magic, PACKET_SPECS, PacketType, packetSpec } from './packet-types.js';
export type { ArgumentName, PacketDirection, PacketSpec } from './packet-types.js';

// Encoding and decoding.
export { encodePacket, encodeRequest, encodeResponse } from './encoder.js';
export type { PacketArgument } from './encoder.js';
export { PacketDecoder } from './decoder.js';
export type { AcceptedMagic, AdminLine, DecoderOptions, Frame, Packet } from './decoder.js';
export { GearmanProtocolError, ProtocolErrorCode } from './protocol-error.js';

// The text admin protocol: commands, and the replies of a job server (formatted and parsed).
export {
  formatAdminError,
  formatAdminListing,
  formatAdminOk,
  formatBatchRow,
  formatJobRow,
  formatPriorityStatusRow,
  formatStatusRow,
  formatWorkerRow,
  isCompleteAdminReply,
  parseAdminCommand,
  parseAdminReply,
  parseBatchRow,
  parseJobRow,
  parsePriorityStatusRow,
  parseStatusRow,
  parseWorkerRow,
} from './admin.js';
export type { AdminCommand, AdminReply, BatchRow, FunctionPriorityStatus, FunctionStatus, JobRow, WorkerRow } from './admin.js';

// The job envelope: metadata (trace context, retries) carried ahead of a job's payload between Nest peers.
export { EnvelopeError, isEnvelope, openEnvelope, sealEnvelope } from './envelope.js';
export type { EnvelopeMetadata, OpenedEnvelope } from './envelope.js';

// Fetching a job's stored state with an ordinary job submission (gearman.result).
export {
  decodeResultReply,
  decodeResultRequest,
  encodeResultReply,
  encodeResultRequest,
  formatResultRefusal,
  MAX_JOB_ID_BYTES,
  RESULT_FUNCTION,
  RESULT_NOW_FUNCTION,
  ResultFetchError,
} from './result-fetch.js';
export type {
  BatchCounts,
  DecodedResultRequest,
  JobStateName,
  JobStateRecord,
  ResultRefusalCode,
  ResultRequest,
  UnknownReason,
} from './result-fetch.js';

// Background batches (gearman.batch): the request, the item naming, the gathered outcomes.
export {
  BATCH_CANCEL_FUNCTION,
  BATCH_FUNCTION,
  batchItemUnique,
  BatchRequestError,
  decodeBatchRequest,
  encodeBatchOutcomes,
  encodeBatchRequest,
  MAX_BATCH_UNIQUE_BYTES,
} from './batch.js';
export type { BatchItemOutcome, BatchPriority, BatchRequest } from './batch.js';
